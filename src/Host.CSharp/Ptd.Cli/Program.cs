return Ptd.Cli.CliApp.Run(args);
