using System.Buffers.Binary;
using System.Text;
using Ptd.Core;

namespace Ptd.Host.Kernels;

/// <summary>
/// The persistent form of a kernel: plain data, never a closure or code. Little-endian, fixed
/// widths:
/// <code>
/// "PTDKERNL" · u32 generator revision · u8 kind · 32 bytes SHA-256 of the key's canonical text
/// likelihood: u8 discrete · u32 P · u32 V · u32 T · T × u32 vertex · u32 E · (T+1) × u32 edge offset
///             · E × i32 target · E×(P+1) × f64 row · u32 S · S × i32 start target · S×(P+1) × f64 row
/// moments:    u32 length · the optimized trace in the core's binary trace encoding (docs/trace-format.md)
/// </code>
/// The cache's envelope checks integrity; this decoder still checks every count and index (a
/// payload of the same revision written by a buggy producer must not crash the executor) and that
/// the payload belongs to the requested key.
/// </summary>
internal static class KernelCodec
{
    private static readonly byte[] Magic = Encoding.ASCII.GetBytes("PTDKERNL");

    public static byte[] EncodeLikelihood(KernelKey key, LikelihoodPlan plan)
    {
        var w = new Writer();
        Header(w, key);
        w.U8(plan.Discrete ? (byte)1 : (byte)0);
        w.I32(plan.ParameterCount);
        w.I32(plan.VertexCount);
        w.Ints(plan.TransientVertex, withCount: true);
        w.I32(plan.EdgeCount);
        w.Ints(plan.EdgeStart, withCount: false);
        w.Ints(plan.EdgeTarget, withCount: false);
        w.Doubles(plan.EdgeRow);
        w.I32(plan.StartTarget.Length);
        w.Ints(plan.StartTarget, withCount: false);
        w.Doubles(plan.StartRow);
        return w.ToArray();
    }

    public static byte[] EncodeMoments(KernelKey key, Trace trace)
    {
        var w = new Writer();
        Header(w, key);
        var bytes = TraceEncoding.encode(trace);
        w.I32(bytes.Length);
        w.Bytes(bytes);
        return w.ToArray();
    }

    public static LikelihoodPlan DecodeLikelihood(KernelKey key, byte[] payload)
    {
        var r = new Reader(payload, key.ToString());
        ReadHeader(r, key);
        bool discrete = r.U8("discrete flag") switch
        {
            0 => false,
            1 => true,
            var b => r.Fail<bool>($"discrete flag {b}"),
        };
        int p = r.I32("parameter count");
        int vertices = r.I32("vertex count");
        int t = r.Count("transient count", 4);
        var transient = r.Ints(t, "transient vertices");
        int e = r.Count("edge count", 4);
        var edgeStart = r.Ints(t + 1, "edge offsets");
        var edgeTarget = r.Ints(e, "edge targets");
        if (p < 0 || p > 1 << 16) r.Fail<int>($"parameter count {p}");
        var edgeRow = r.Doubles(checked(e * (p + 1)), "edge rows");
        int s = r.Count("start edge count", 4);
        var startTarget = r.Ints(s, "start targets");
        var startRow = r.Doubles(checked(s * (p + 1)), "start rows");
        r.End();
        var plan = new LikelihoodPlan
        {
            Discrete = discrete,
            ParameterCount = p,
            VertexCount = vertices,
            TransientVertex = transient,
            EdgeStart = edgeStart,
            EdgeTarget = edgeTarget,
            EdgeRow = edgeRow,
            StartTarget = startTarget,
            StartRow = startRow,
        };
        plan.Validate(key.ToString());
        if (plan.ParameterCount != key.ParameterCount || plan.Discrete != (key.Kind == KernelKind.DiscreteLikelihood))
            throw new PtdException($"{key}: the persisted kernel does not match its key (parameters or time scale)");
        return plan;
    }

    public static Trace DecodeMoments(KernelKey key, byte[] payload)
    {
        var r = new Reader(payload, key.ToString());
        ReadHeader(r, key);
        int length = r.Count("trace length", 1);
        var bytes = r.Bytes(length, "trace");
        r.End();
        return TraceEncoding.decodeFor(Ptd.Core.TraceKey.Parse(key.TraceKey), bytes);
    }

    /// <summary>
    /// The facts in a persisted kernel's header for display (<c>ptd cache show</c>): kind, generator revision and, for a
    /// likelihood, the plan's sizes. Reads only the header; never throws.
    /// </summary>
    public static IReadOnlyDictionary<string, string> Describe(byte[] payload, string source)
    {
        var c = System.Globalization.CultureInfo.InvariantCulture;
        try
        {
            var r = new Reader(payload, source);
            if (!r.Bytes(Magic.Length, "magic").AsSpan().SequenceEqual(Magic)) return new Dictionary<string, string> { ["kernel"] = "not a kernel (magic)" };
            int revision = r.I32("generator revision");
            var kind = (KernelKind)r.U8("kind");
            r.Bytes(32, "key digest");
            var facts = new Dictionary<string, string>
            {
                ["kind"] = Enum.IsDefined(kind) ? kind.ToString() : $"unknown ({(int)kind})",
                ["generator"] = "r" + revision.ToString(c),
            };
            if (kind is KernelKind.ContinuousLikelihood or KernelKind.DiscreteLikelihood)
            {
                r.U8("discrete flag");
                facts["parameters"] = r.I32("parameter count").ToString(c);
                facts["vertices"] = r.I32("vertex count").ToString(c);
                facts["transient"] = r.I32("transient count").ToString(c);
            }
            else if (kind == KernelKind.Moments)
            {
                facts["trace bytes"] = r.I32("trace length").ToString(c);
            }
            return facts;
        }
        catch (PtdException e)
        {
            return new Dictionary<string, string> { ["kernel"] = e.Message };
        }
    }

    private static void Header(Writer w, KernelKey key)
    {
        w.Bytes(Magic);
        w.I32(key.GeneratorRevision);
        w.U8((byte)key.Kind);
        w.Bytes(Convert.FromHexString(key.Digest));
    }

    private static void ReadHeader(Reader r, KernelKey key)
    {
        if (!r.Bytes(Magic.Length, "magic").AsSpan().SequenceEqual(Magic)) r.Fail<int>("not a kernel (magic)");
        int revision = r.I32("generator revision");
        if (revision != key.GeneratorRevision) r.Fail<int>($"generator revision {revision}, expected {key.GeneratorRevision}");
        int kind = r.U8("kind");
        if (kind != (int)key.Kind) r.Fail<int>($"kind {kind}, expected {(int)key.Kind}");
        if (!r.Bytes(32, "key digest").AsSpan().SequenceEqual(Convert.FromHexString(key.Digest)))
            r.Fail<int>("the payload belongs to another kernel key");
    }

    private sealed class Writer
    {
        private readonly MemoryStream _s = new();
        private readonly byte[] _b = new byte[8];

        public void U8(byte x) => _s.WriteByte(x);
        public void Bytes(byte[] x) => _s.Write(x);

        public void I32(int x)
        {
            BinaryPrimitives.WriteInt32LittleEndian(_b, x);
            _s.Write(_b, 0, 4);
        }

        public void Ints(int[] xs, bool withCount)
        {
            if (withCount) I32(xs.Length);
            foreach (int x in xs) I32(x);
        }

        public void Doubles(double[] xs)
        {
            foreach (double x in xs)
            {
                BinaryPrimitives.WriteInt64LittleEndian(_b, BitConverter.DoubleToInt64Bits(x));
                _s.Write(_b, 0, 8);
            }
        }

        public byte[] ToArray() => _s.ToArray();
    }

    private sealed class Reader(byte[] data, string source)
    {
        private int _pos;

        public T Fail<T>(string what) => throw new PtdException($"{source}: damaged persisted kernel at byte {_pos}: {what}");

        private void Need(long n, string what)
        {
            if (n < 0 || n > data.Length - _pos) Fail<int>($"{what}: truncated ({n} byte(s) needed, {data.Length - _pos} left)");
        }

        public byte U8(string what)
        {
            Need(1, what);
            return data[_pos++];
        }

        public int I32(string what)
        {
            Need(4, what);
            int x = BinaryPrimitives.ReadInt32LittleEndian(data.AsSpan(_pos));
            _pos += 4;
            return x;
        }

        /// <summary>A count of items of <paramref name="itemBytes"/> that must still fit in the input.</summary>
        public int Count(string what, int itemBytes)
        {
            int n = I32(what);
            if (n < 0 || (long)n * itemBytes > data.Length - _pos) Fail<int>($"{what} {n} does not fit in the payload");
            return n;
        }

        public byte[] Bytes(int n, string what)
        {
            Need(n, what);
            var x = data.AsSpan(_pos, n).ToArray();
            _pos += n;
            return x;
        }

        public int[] Ints(int n, string what)
        {
            Need((long)n * 4, what);
            var x = new int[n];
            for (int i = 0; i < n; i++) x[i] = I32(what);
            return x;
        }

        public double[] Doubles(int n, string what)
        {
            Need((long)n * 8, what);
            var x = new double[n];
            for (int i = 0; i < n; i++)
            {
                x[i] = BitConverter.Int64BitsToDouble(BinaryPrimitives.ReadInt64LittleEndian(data.AsSpan(_pos)));
                _pos += 8;
            }
            return x;
        }

        public void End()
        {
            if (_pos != data.Length) Fail<int>($"{data.Length - _pos} trailing byte(s)");
        }
    }
}
