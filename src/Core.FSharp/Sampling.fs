namespace Ptd.Core

// placeholder: being written
module internal SamplingPlaceholder =
    let x = 0
