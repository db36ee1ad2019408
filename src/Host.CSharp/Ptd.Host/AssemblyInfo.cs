// Ptd.Host: the C# host (SVGD, caches, plugin loading). See README.md.
