namespace Ptd.Core

open System
open System.Globalization

/// Built-in model specifications `name:key=value,...` (e.g. `coalescent:n=50`, `rabbits:R=500`),
/// so that large models need no file. A rate that is omitted becomes a parameter θ.
module ModelSpec =

    type private Entry =
        { Name: string
          Keys: (string * string) list // key, description
          Summary: string
          Build: Map<string, string> -> Graph }

    let private intArg (spec: string) (args: Map<string, string>) key =
        match args.TryFind key with
        | None -> Fail.format "model spec '%s': missing %s=<integer>" spec key
        | Some s ->
            match Int32.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture) with
            | true, v -> v
            | _ -> Fail.format "model spec '%s': %s=%s is not an integer" spec key s

    /// Sizes above these would build more than ~10⁷ vertices from a few characters of input (an
    /// allocation no spec should trigger by a typo, e.g. erlang:k=2147483647): refused up front.
    let private sizeArg (spec: string) (args: Map<string, string>) key (limit: int) (states: string) =
        let v = intArg spec args key
        if v > limit then
            Fail.format "model spec '%s': %s=%d is too large; built-in models allow %s ≤ %d (%s); write a model file for larger models"
                spec key v key limit states
        v

    let private floatArg (spec: string) (args: Map<string, string>) key =
        args.TryFind key
        |> Option.map (fun s ->
            match Double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture) with
            | true, v when Double.IsFinite v -> v
            | _ -> Fail.format "model spec '%s': %s=%s is not a finite number" spec key s)

    let private entries (spec: string) =
        [ { Name = "coalescent"
            Keys = [ "n", "number of samples (≥ 2)"; "rate", "pair-coalescence rate (omit: parameter θ₁)" ]
            Summary = "Kingman coalescent, block-counting state; E[T_MRCA] = 2(1 − 1/n) at rate 1"
            Build = fun a -> Models.coalescent (sizeArg spec a "n" 80 "the state space grows like the partitions of n: 1.6·10⁷ at n = 80") (floatArg spec a "rate") }
          { Name = "rabbits"
            Keys = [ "R", "number of rabbits (≥ 1)"; "fl", "flood rate of the left island (default 2)"; "fr", "flood rate of the right island (default 4)" ]
            Summary = "rabbit islands (cyclic), constant rates"
            Build =
              fun a ->
                  Models.rabbits (sizeArg spec a "R" 4000 "about R²/2 states") (defaultArg (floatArg spec a "fl") 2.0) (defaultArg (floatArg spec a "fr") 4.0) }
          { Name = "rabbits3"
            Keys = [ "R", "number of rabbits (≥ 1)" ]
            Summary = "rabbit islands (cyclic), θ = (jump rate per rabbit, flood left, flood right)"
            Build = fun a -> Models.rabbits3 (sizeArg spec a "R" 4000 "about R²/2 states") }
          { Name = "erlang"
            Keys = [ "k", "number of phases (≥ 1)"; "rate", "rate per phase (omit: parameter θ₁)" ]
            Summary = "Erlang(k, rate); E = k/rate"
            Build = fun a -> Models.erlang (sizeArg spec a "k" 10_000_000 "k + 1 states") (floatArg spec a "rate") }
          { Name = "exponential"
            Keys = [ "rate", "rate (omit: parameter θ₁)" ]
            Summary = "Exponential(rate); E = 1/rate"
            Build = fun a -> Models.exponential (floatArg spec a "rate") }
          { Name = "twodeme"
            Keys = [ "n", "number of lineages (≥ 2)" ]
            Summary = "structured coalescent in two demes (cyclic), θ = (coalescence rate, migration rate)"
            Build = fun a -> Models.twoDeme (sizeArg spec a "n" 4000 "about n²/2 states") } ]

    /// The names of the built-in models.
    let names = entries "" |> List.map (fun e -> e.Name)

    /// A help text listing every built-in model and its keys.
    let help () =
        entries ""
        |> List.map (fun e ->
            let keys = e.Keys |> List.map (fun (k, d) -> sprintf "      %s: %s" k d) |> String.concat "\n"
            sprintf "  %s — %s\n%s" e.Name e.Summary keys)
        |> String.concat "\n"

    /// True when the text looks like a built-in spec (a known name, optionally followed by ':').
    let isSpec (text: string) =
        not (String.IsNullOrWhiteSpace text)
        && (let name = (text.Split ':').[0]
            names |> List.contains name && (text = name || text.StartsWith(name + ":")))

    /// Parses and builds a built-in model, e.g. `coalescent:n=50` or `rabbits:R=500,fl=2`.
    let build (spec: string) : Graph =
        if String.IsNullOrWhiteSpace spec then Fail.withMessage "empty model spec"
        let name, rest =
            match spec.IndexOf ':' with
            | -1 -> spec, ""
            | i -> spec.Substring(0, i), spec.Substring(i + 1)
        let all = entries spec
        match all |> List.tryFind (fun e -> e.Name = name) with
        | None -> Fail.format "unknown model '%s'; built-in models: %s (or give a model file path)" name (String.Join(", ", names))
        | Some entry ->
            let args =
                rest.Split(',', StringSplitOptions.RemoveEmptyEntries)
                |> Array.map (fun kv ->
                    match kv.Split('=', 2) with
                    | [| k; v |] when k.Trim() <> "" -> k.Trim(), v.Trim()
                    | _ -> Fail.format "model spec '%s': '%s' should be key=value" spec kv)
            // A repeated key is a typo or a merge accident: "last wins" would silently pick one.
            args
            |> Array.countBy fst
            |> Array.tryFind (fun (_, n) -> n > 1)
            |> Option.iter (fun (k, n) -> Fail.format "model spec '%s': key '%s' is given %d times; give each key once" spec k n)
            for k, _ in args do
                if not (entry.Keys |> List.exists (fun (key, _) -> key = k)) then
                    Fail.format "model spec '%s': unknown key '%s' for %s; keys: %s" spec k name
                        (String.Join(", ", entry.Keys |> List.map fst))
            entry.Build(Map.ofArray args)
