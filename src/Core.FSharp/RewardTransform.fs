namespace Ptd.Core

// placeholder: being written
module internal RewardTransformPlaceholder =
    let x = 0
