namespace Ptd.Core

// placeholder: being written
module internal ModelFilePlaceholder =
    let x = 0
