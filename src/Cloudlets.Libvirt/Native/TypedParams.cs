using System.Globalization;

namespace Cloudlets.Libvirt.Native;

/// <summary>
/// Builds a libvirt typed-parameter array with libvirt's own helpers (libvirt allocates it and
/// copies the strings); disposing frees it with <c>virTypedParamsFree</c>.
/// </summary>
internal sealed unsafe class TypedParamsBuilder : IDisposable
{
    private VirTypedParameter* _params;
    private int _count;
    private int _max;

    public TypedParamsBuilder() => LibvirtRuntime.EnsureInitialized();

    /// <summary>The array (valid until disposed).</summary>
    public VirTypedParameter* Pointer => _params;

    /// <summary>The number of parameters added.</summary>
    public int Count => _count;

    public TypedParamsBuilder Add(string name, string value)
    {
        Check(LibvirtNative.virTypedParamsAddString(ref _params, ref _count, ref _max, name, value), "virTypedParamsAddString");
        return this;
    }

    public TypedParamsBuilder Add(string name, ulong value)
    {
        Check(LibvirtNative.virTypedParamsAddULLong(ref _params, ref _count, ref _max, name, value), "virTypedParamsAddULLong");
        return this;
    }

    public TypedParamsBuilder Add(string name, int value)
    {
        Check(LibvirtNative.virTypedParamsAddInt(ref _params, ref _count, ref _max, name, value), "virTypedParamsAddInt");
        return this;
    }

    /// <summary>Adds one entry per value under the same name (libvirt's way of passing a list).</summary>
    public TypedParamsBuilder AddList(string name, IEnumerable<string> values)
    {
        ArgumentNullException.ThrowIfNull(values);
        foreach (var v in values)
        {
            Add(name, v);
        }

        return this;
    }

    /// <summary>Reads the parameters back (for logs and tests).</summary>
    public IReadOnlyDictionary<string, object> Read() => TypedParams.Read(_params, _count);

    public void Dispose()
    {
        if (_params is not null)
        {
            LibvirtNative.virTypedParamsFree(_params, _count);
            _params = null;
        }

        _count = 0;
        _max = 0;
    }

    private static void Check(int rc, string api)
    {
        if (rc < 0)
        {
            throw LibvirtException.FromLastError(api);
        }
    }
}

/// <summary>Reads a typed-parameter array into managed values (a repeated name keeps its last value).</summary>
internal static unsafe class TypedParams
{
    public static Dictionary<string, object> Read(VirTypedParameter* p, int n)
    {
        var result = new Dictionary<string, object>(StringComparer.Ordinal);
        for (var i = 0; i < n; i++)
        {
            var item = &p[i];
            var name = new string((sbyte*)item->Field, 0, StrLen(item->Field, VirTypedParameter.FieldLength), System.Text.Encoding.UTF8);
            object value = item->Type switch
            {
                Vir.ParamInt => item->I,
                Vir.ParamUInt => item->UI,
                Vir.ParamLLong => item->L,
                Vir.ParamULLong => item->UL,
                Vir.ParamDouble => item->D,
                Vir.ParamBoolean => item->B != 0,
                Vir.ParamString => LibvirtRuntime.Borrowed((nint)item->S) ?? string.Empty,
                _ => item->Type.ToString(CultureInfo.InvariantCulture),
            };
            result[name] = value;
        }

        return result;
    }

    private static int StrLen(byte* s, int max)
    {
        var i = 0;
        while (i < max && s[i] != 0)
        {
            i++;
        }

        return i;
    }
}
