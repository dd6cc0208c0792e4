using System.Diagnostics;
using System.Globalization;
using System.Text.Json;

namespace Cloudlets.Controller.Tests.Lab;

/// <summary>
/// Debian's Prometheus, started by the test on loopback with its own configuration and data folder,
/// scraping one target every second. Owns the process (ended by its pid when disposed) and the folder.
/// </summary>
internal sealed class PrometheusServer : IAsyncDisposable
{
    public const string Program = "/usr/bin/prometheus";

    private readonly Process _process;
    private readonly string _folder;

    private PrometheusServer(Process process, string folder, int port)
    {
        _process = process;
        _folder = folder;
        Port = port;
    }

    public int Port { get; }

    public static async Task<PrometheusServer> StartAsync(string scrapeTarget, CancellationToken cancellationToken)
    {
        var folder = Directory.CreateTempSubdirectory("cloudlets-prometheus-").FullName;
        var port = ControllerProcess.FreePort();
        var config = Path.Combine(folder, "prometheus.yml");
        await File.WriteAllTextAsync(config, $"""
            global:
              scrape_interval: 1s
              scrape_timeout: 1s
            scrape_configs:
              - job_name: cloudlets-controller
                static_configs:
                  - targets: ['{scrapeTarget}']
            """, cancellationToken);
        var psi = new ProcessStartInfo(Program)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in new[]
                 {
                     "--config.file=" + config,
                     "--storage.tsdb.path=" + Path.Combine(folder, "data"),
                     "--web.listen-address=127.0.0.1:" + port.ToString(CultureInfo.InvariantCulture),
                     "--log.level=warn",
                 })
        {
            psi.ArgumentList.Add(a);
        }

        var process = Process.Start(psi)!;
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var server = new PrometheusServer(process, folder, port);
        try
        {
            using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
            var until = DateTime.UtcNow + TimeSpan.FromSeconds(60);
            while (true)
            {
                if (process.HasExited)
                {
                    throw new InvalidOperationException($"prometheus exited with {process.ExitCode}.");
                }

                try
                {
                    using var ready = await http.GetAsync(new Uri($"http://127.0.0.1:{port}/-/ready"), cancellationToken);
                    if (ready.IsSuccessStatusCode)
                    {
                        return server;
                    }
                }
                catch (HttpRequestException)
                {
                }

                if (DateTime.UtcNow > until)
                {
                    throw new TimeoutException("prometheus did not become ready within 60 s.");
                }

                await Task.Delay(250, cancellationToken);
            }
        }
        catch
        {
            await server.DisposeAsync();
            throw;
        }
    }

    /// <summary>An instant PromQL query through the HTTP API; returns the result vector.</summary>
    public async Task<IReadOnlyList<JsonElement>> QueryAsync(string promql, CancellationToken cancellationToken)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        var body = await http.GetStringAsync(new Uri($"http://127.0.0.1:{Port}/api/v1/query?query={Uri.EscapeDataString(promql)}"), cancellationToken);
        var root = JsonDocument.Parse(body).RootElement;
        if (root.GetProperty("status").GetString() != "success")
        {
            throw new InvalidOperationException("PromQL query failed: " + body);
        }

        return [.. root.GetProperty("data").GetProperty("result").EnumerateArray().Select(e => e.Clone())];
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: false); // this test's own prometheus, by its pid
            await _process.WaitForExitAsync();
        }

        _process.Dispose();
        Directory.Delete(_folder, recursive: true);
    }
}
