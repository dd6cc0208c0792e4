using System.Runtime.InteropServices;

namespace Cloudlets.Libvirt.Native;

#pragma warning disable CA1815 // Interop structs are never compared.

/// <summary><c>virDomainInfo</c> (40 bytes on LP64).</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct VirDomainInfo
{
    public byte State;
    public CULong MaxMem;
    public CULong Memory;
    public ushort NrVirtCpu;
    public ulong CpuTime;
}

/// <summary><c>virNodeInfo</c> (64 bytes on LP64).</summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct VirNodeInfo
{
    public fixed byte Model[32];
    public CULong Memory;
    public uint Cpus;
    public uint Mhz;
    public uint Nodes;
    public uint Sockets;
    public uint Cores;
    public uint Threads;
}

/// <summary><c>virTypedParameter</c> (96 bytes): an 80-byte name, a type, and a value union.</summary>
[StructLayout(LayoutKind.Explicit, Size = 96)]
internal unsafe struct VirTypedParameter
{
    public const int FieldLength = 80;

    [FieldOffset(0)] public fixed byte Field[FieldLength];
    [FieldOffset(80)] public int Type;
    [FieldOffset(88)] public int I;
    [FieldOffset(88)] public uint UI;
    [FieldOffset(88)] public long L;
    [FieldOffset(88)] public ulong UL;
    [FieldOffset(88)] public double D;
    [FieldOffset(88)] public byte B;
    [FieldOffset(88)] public byte* S;
}

/// <summary><c>virError</c> (80 bytes).</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct VirError
{
    public int Code;
    public int Domain;
    public nint Message;
    public int Level;
    public nint Conn;
    public nint Dom;
    public nint Str1;
    public nint Str2;
    public nint Str3;
    public int Int1;
    public int Int2;
    public nint Net;
}

/// <summary><c>virConnectCredential</c> (48 bytes).</summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct VirConnectCredential
{
    public int Type;
    public byte* Prompt;
    public byte* Challenge;
    public byte* DefResult;
    public byte* Result;
    public uint ResultLen;
}

/// <summary><c>virConnectAuth</c> (32 bytes).</summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct VirConnectAuth
{
    public int* CredType;
    public uint NCredType;
    public delegate* unmanaged<VirConnectCredential*, uint, nint, int> Cb;
    public nint CbData;
}
