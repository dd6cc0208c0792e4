using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;

namespace Cloudlets.Libvirt.Native;

/// <summary>
/// The <c>virConnectAuth</c> of one <c>virConnectOpenAuth</c> call: the credential types this library
/// answers (<c>VIR_CRED_AUTHNAME</c> and <c>VIR_CRED_PASSPHRASE</c>, what SASL's SCRAM and DIGEST-MD5
/// ask) and a callback that fills them from an <see cref="ILibvirtCredentialProvider"/>. The provider
/// is asked at most once per open. Each answer is a <c>malloc</c>ed copy, because libvirt's remote
/// driver frees every <c>result</c> itself when the handshake ends; the managed UTF-8 buffer it was
/// copied from is zeroed at once. Nothing throws across the callback: any failure answers -1, which
/// libvirt reports as an authentication error.
/// </summary>
internal sealed unsafe class ConnectAuth : IDisposable
{
    private const int CredAuthName = 2;
    private const int CredPassphrase = 5;

    private readonly ILibvirtCredentialProvider _provider;
    private readonly Uri _uri;
    private readonly int* _types;
    private GCHandle _self;
    private LibvirtCredential? _answered;
    private bool _asked;

    public ConnectAuth(ILibvirtCredentialProvider provider, Uri uri)
    {
        _provider = provider;
        _uri = uri;
        _types = (int*)NativeMemory.Alloc(2, sizeof(int));
        _types[0] = CredAuthName;
        _types[1] = CredPassphrase;
        _self = GCHandle.Alloc(this);
    }

    /// <summary>How many times libvirt called back (tests: one attempt per open).</summary>
    public int Calls { get; private set; }

    /// <summary>The struct to pass; valid until <see cref="Dispose"/>.</summary>
    public VirConnectAuth Native => new()
    {
        CredType = _types,
        NCredType = 2,
        Cb = &OnCredentials,
        CbData = GCHandle.ToIntPtr(_self),
    };

    public void Dispose()
    {
        if (_self.IsAllocated)
        {
            _self.Free();
            NativeMemory.Free(_types);
        }

        _answered = null;
    }

    [UnmanagedCallersOnly]
    private static int OnCredentials(VirConnectCredential* cred, uint ncred, nint cbdata)
    {
        try
        {
            return GCHandle.FromIntPtr(cbdata).Target is ConnectAuth auth ? auth.Fill(cred, ncred) : -1;
        }
#pragma warning disable CA1031 // Nothing may throw into libvirt; -1 makes it fail the open as an authentication error.
        catch (Exception)
#pragma warning restore CA1031
        {
            return -1;
        }
    }

    private int Fill(VirConnectCredential* cred, uint ncred)
    {
        Calls++;
        if (!_asked)
        {
            // One question to the provider per open, however often SASL comes back.
            _asked = true;
            _answered = _provider.GetCredential(_uri);
        }

        if (_answered is not { } credential)
        {
            return -1;
        }

        for (var i = 0; i < ncred; i++)
        {
            var value = cred[i].Type switch
            {
                CredAuthName => credential.UserName,
                CredPassphrase => credential.Password,
                _ => null,
            };
            if (value is null)
            {
                return -1;
            }

            cred[i].Result = Copy(value, out var length);
            cred[i].ResultLen = length;
        }

        return 0;
    }

    /// <summary>A NUL-terminated <c>malloc</c>ed UTF-8 copy (libvirt frees it); the managed bytes are zeroed.</summary>
    private static byte* Copy(string value, out uint length)
    {
        var bytes = Encoding.UTF8.GetBytes(value);
        try
        {
            var native = (byte*)NativeMemory.Alloc((nuint)bytes.Length + 1);
            bytes.CopyTo(new Span<byte>(native, bytes.Length));
            native[bytes.Length] = 0;
            length = (uint)bytes.Length;
            return native;
        }
        finally
        {
            CryptographicOperations.ZeroMemory(bytes);
        }
    }
}
