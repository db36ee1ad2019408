namespace Ptd.Core

// placeholder: being written
module internal ModelSpecPlaceholder =
    let x = 0
