namespace Ptd.Core

// placeholder: being written
module internal MatrixPlaceholder =
    let x = 0
