using System.Globalization;

namespace Cloudlets.Libvirt.Tests;

/// <summary>
/// A private node file for libvirt's test driver (<c>test:///ABSOLUTE/PATH/node.xml</c>): each
/// connection to it gets its own state, so tests run in parallel without seeing each other.
/// </summary>
public sealed class TestNode : IDisposable
{
    private readonly string _folder;

    private TestNode(string folder, string path)
    {
        _folder = folder;
        Path = path;
        Uri = new Uri("test://" + path);
    }

    /// <summary>The node file.</summary>
    public string Path { get; }

    /// <summary>The test driver URI for it.</summary>
    public Uri Uri { get; }

    /// <summary>
    /// A node with 8 CPUs at 2400 MHz, 16 GiB, a running VM <c>vm-run</c> (512 MiB, 2 vCPUs) and a
    /// shut-off VM <c>vm-off</c>.
    /// </summary>
    public static TestNode Create() => Create(includeVmRun: true);

    /// <summary>A node like <see cref="Create()"/> but without <c>vm-run</c>, plus <paramref name="extraRunning"/> running VMs.</summary>
    public static TestNode CreateOther(params string[] extraRunning) => Create(includeVmRun: false, extraRunning);

    private static TestNode Create(bool includeVmRun, params string[] extraRunning)
    {
        var vmRun = includeVmRun
            ? "<domain type='test'><name>vm-run</name><memory>524288</memory><vcpu>2</vcpu><os><type>hvm</type></os></domain>"
            : string.Empty;
        var folder = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "cloudlets-libvirt-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(folder);
        var path = System.IO.Path.Combine(folder, "node.xml");
        var extra = string.Concat(extraRunning.Select(n =>
            string.Create(CultureInfo.InvariantCulture, $"<domain type='test'><name>{n}</name><memory>262144</memory><vcpu>1</vcpu><os><type>hvm</type></os></domain>")));
        File.WriteAllText(path, $"""
            <node>
              <cpu><mhz>2400</mhz><model>x86_64</model><nodes>1</nodes><sockets>1</sockets><cores>4</cores><threads>2</threads></cpu>
              <memory>16777216</memory>
              {vmRun}
              <domain type='test' xmlns:test='http://libvirt.org/schemas/domain/test/1.0'>
                <name>vm-off</name><memory>524288</memory><vcpu>1</vcpu><os><type>hvm</type></os><test:runstate>5</test:runstate></domain>
              {extra}
            </node>
            """);
        return new TestNode(folder, path);
    }

    /// <summary>Options for a host on this node.</summary>
    public LibvirtHostOptions Options(string name = "t1") => new() { Name = name, Uri = Uri };

    /// <inheritdoc />
    public void Dispose()
    {
        try
        {
            Directory.Delete(_folder, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
