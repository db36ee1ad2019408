namespace Ptd.Core

// placeholder: being written
module internal DistributionPlaceholder =
    let x = 0
