using System.CommandLine;
using Cloudlets.Controller.Configuration;
using Cloudlets.Controller.Hosting;
using Cloudlets.Controller.Http;
using Cloudlets.Core.Options;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Cloudlets.Controller.Tool;

/// <summary>The command line of <c>cloudlets-controller</c> (System.CommandLine) and its run.</summary>
public static class ControllerCommand
{
    /// <summary>The prefix of environment variables read as configuration (<c>CLOUDLETS_Controller__Http__Urls</c>).</summary>
    public const string EnvironmentPrefix = "CLOUDLETS_";

    private const string Description = """
        cloudlets-controller: probes the KVM hosts from the users' vantage points (or takes cloudlets-agent samples
        over MQTT), decides per VM which host serves its users best and why, and — in automatic mode — live-migrates
        the VM there. Advisory by default (decisions only). Serves /metrics (Prometheus), /healthz, /readyz and an
        operator API on loopback, and writes an audit log of JSON lines.

        Configuration (later sources win): the JSON file (--config), environment variables CLOUDLETS_Controller__...
        (for example CLOUDLETS_Controller__Pipeline__Mode=Automatic), then --set KEY=VALUE and the options below.
        It is validated before anything connects; every error is printed with its path.

        Needs root when it probes by ICMP without a ping group, probes or connects from a network namespace
        (networkNamespace settings), or reaches qemu:///system; otherwise any user that may reach the hosts.

        With --election (or Controller:Election), the region's controllers elect one leader on etcd: only the leader
        migrates, each move only after it re-confirmed its lease in etcd; followers decide (advisory) and stay warm.
        A stop resigns, so a follower takes over at once; a leader that dies is replaced after the lease TTL.

        SIGTERM or Ctrl+C: no new move starts; migrations under way finish within Pipeline.StopTimeout (default 10 min).

        Exit codes:
          0  stopped cleanly; every migration under way at the stop finished (also --help, --version, a valid --validate)
          1  failed: a host could not be reached at start, the samples failed, the HTTP endpoint could not listen
          2  bad command line or configuration (nothing was connected)
          3  stopped, but a migration still running when Pipeline.StopTimeout ran out was aborted (the VM stays on its source)
        """;

    /// <summary>Parses, validates and runs until SIGTERM or Ctrl+C; returns the exit code.</summary>
    public static async Task<int> RunAsync(string[] args, TextWriter? output = null, TextWriter? error = null)
    {
        output ??= Console.Out;
        error ??= Console.Error;
        var config = new Option<FileInfo?>("--config", "-c") { Description = "The JSON configuration file (see controller.example.json next to the program)." };
        var mode = new Option<string?>("--mode") { Description = "advisory (decisions only) or automatic (migrate); overrides Controller:Pipeline:Mode." };
        mode.AcceptOnlyFromAmong("advisory", "automatic");
        var urls = new Option<string?>("--urls") { Description = "Where HTTP listens, ';'-separated (default http://127.0.0.1:9464); overrides Controller:Http:Urls." };
        var audit = new Option<string?>("--audit-log") { Description = "The audit log file; overrides Controller:Audit:Path." };
        var set = new Option<string[]>("--set") { Description = "A configuration value KEY=VALUE (KEY with ':' between sections, for example Controller:Policy:Cooldown=00:01:00); repeatable.", AllowMultipleArgumentsPerToken = false };
        var election = new Option<string?>("--election")
        {
            Description = "Leader election on etcd: etcd://HOST:PORT[,HOST:PORT...][/REGION] (etcds:// for TLS); sets Controller:Election:Endpoints (and Region). "
                + "Only the leader migrates, each move after re-confirming its lease in etcd; followers stay advisory. User, password file, TLS files and lease TTL go in Controller:Election.",
        };
        var validate = new Option<bool>("--validate") { Description = "Check the configuration, print every error, and exit (0 valid, 2 invalid) without connecting." };

        var root = new RootCommand(Description) { config, mode, urls, audit, election, set, validate };
        var parsed = root.Parse(args);
        if (parsed.Errors.Count > 0)
        {
            foreach (var e in parsed.Errors)
            {
                await error.WriteLineAsync($"cloudlets-controller: {e.Message}");
            }

            await error.WriteLineAsync("Try 'cloudlets-controller --help'.");
            return ControllerExitCodes.BadConfiguration;
        }

        root.SetAction(async (result, _) =>
        {
            var overrides = new List<KeyValuePair<string, string?>>();
            foreach (var item in result.GetValue(set) ?? [])
            {
                var at = item.IndexOf('=', StringComparison.Ordinal);
                if (at <= 0)
                {
                    await error.WriteLineAsync($"cloudlets-controller: --set '{item}' is not KEY=VALUE.");
                    return ControllerExitCodes.BadConfiguration;
                }

                overrides.Add(new(item[..at], item[(at + 1)..]));
            }

            if (result.GetValue(mode) is { } m)
            {
                overrides.Add(new("Controller:Pipeline:Mode", m));
            }

            if (result.GetValue(urls) is { } u)
            {
                overrides.Add(new("Controller:Http:Urls", u));
            }

            if (result.GetValue(audit) is { } a)
            {
                overrides.Add(new("Controller:Audit:Path", a));
            }

            if (result.GetValue(election) is { } e)
            {
                if (ControllerElectionOptions.ParseShorthand(e, out var why) is not { } keys)
                {
                    await error.WriteLineAsync("cloudlets-controller: " + why);
                    return ControllerExitCodes.BadConfiguration;
                }

                overrides.AddRange(keys);
            }

            return await RunControllerAsync(result.GetValue(config), overrides, result.GetValue(validate), output, error);
        });

        // The host handles SIGTERM and SIGINT itself (a graceful stop), so System.CommandLine must not.
        return await parsed.InvokeAsync(new InvocationConfiguration { ProcessTerminationTimeout = null, Output = output, Error = error });
    }

    /// <summary>The configuration sources in order: the file, the environment, the command line's values.</summary>
    internal static IConfigurationRoot BuildConfiguration(FileInfo? file, IEnumerable<KeyValuePair<string, string?>> overrides)
    {
        var builder = new ConfigurationBuilder();
        if (file is not null)
        {
            builder.AddJsonFile(file.FullName, optional: false, reloadOnChange: true);
        }

        builder.AddEnvironmentVariables(EnvironmentPrefix);
        builder.AddInMemoryCollection(overrides);
        return builder.Build();
    }

    private static async Task<int> RunControllerAsync(FileInfo? file, List<KeyValuePair<string, string?>> overrides, bool validateOnly, TextWriter output, TextWriter error)
    {
        IConfigurationRoot configuration;
        try
        {
            configuration = BuildConfiguration(file, overrides);
        }
        catch (Exception ex) when (ex is FileNotFoundException or InvalidDataException or FormatException or IOException or UnauthorizedAccessException)
        {
            // A missing file, or JSON that does not parse (the provider names the line).
            await error.WriteLineAsync($"cloudlets-controller: the configuration cannot be read: {ex.Message}{(ex.InnerException is { } inner ? " " + inner.Message : "")}");
            return ControllerExitCodes.BadConfiguration;
        }

        var errors = new OptionsErrors();
        var options = ControllerConfiguration.TryLoad(configuration, errors);
        if (errors.HasErrors || options is null)
        {
            await error.WriteLineAsync($"cloudlets-controller: the configuration is invalid ({errors.Errors.Count} error{(errors.Errors.Count == 1 ? "" : "s")}; paths are under the 'Controller' section):");
            foreach (var e in errors.Errors)
            {
                await error.WriteLineAsync("  " + e);
            }

            (configuration as IDisposable)?.Dispose();
            return ControllerExitCodes.BadConfiguration;
        }

        if (validateOnly)
        {
            await output.WriteLineAsync($"cloudlets-controller: the configuration is valid: {options.Hosts.Count} hosts, {options.Vms.Count} VMs, {options.Pipeline.Mode} mode"
                + (options.Election is { } el ? $", election in region '{el.Region}' on {string.Join(",", el.Endpoints)}." : "."));
            (configuration as IDisposable)?.Dispose();
            return ControllerExitCodes.Success;
        }

        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = [], ContentRootPath = AppContext.BaseDirectory });
        builder.Configuration.Sources.Clear();
        builder.Configuration.AddConfiguration(configuration);
        builder.Logging.ClearProviders();
        builder.Logging.AddFilter("Microsoft.AspNetCore", LogLevel.Warning); // one line per request is noise; the "Logging" section can turn it back on
        builder.Logging.AddConfiguration(configuration.GetSection("Logging"));
        builder.Logging.AddSimpleConsole(c =>
        {
            c.SingleLine = true;
            c.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ ";
            c.UseUtcTimestamp = true;
        });
        builder.Logging.AddConsole(c => c.LogToStandardErrorThreshold = LogLevel.Trace);
        builder.Host.UseSystemd();
        builder.WebHost.UseUrls([.. options.Http.UrlList]);
        builder.Services.AddCloudletsController(options);
        builder.Services.AddSingleton(configuration);
        builder.Services.AddHostedService<ControllerConfigurationReload>();

        WebApplication app;
        try
        {
            app = builder.Build();
        }
        catch (Exception ex) when (ex is OptionsValidationException or InvalidOperationException)
        {
            await error.WriteLineAsync($"cloudlets-controller: {ex.Message}");
            return ControllerExitCodes.BadConfiguration;
        }

        await using (app)
        {
            app.MapCloudletsMetrics();
            app.MapCloudletsHealth();
            app.MapCloudletsOperatorApi();
            var state = app.Services.GetRequiredService<ControllerState>();
            try
            {
                await app.RunAsync();
            }
#pragma warning disable CA1031 // Whatever failed the start or the run, the exit code says so and the message is printed.
            catch (Exception ex)
#pragma warning restore CA1031
            {
                await error.WriteLineAsync($"cloudlets-controller: {ex.GetBaseException().Message}");
                return ControllerExitCodes.Failed;
            }

            return state.ExitCode;
        }
    }
}
