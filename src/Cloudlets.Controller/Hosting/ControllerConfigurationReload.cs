using System.Runtime.InteropServices;
using Cloudlets.Controller.Audit;
using Cloudlets.Controller.Configuration;
using Cloudlets.Controller.Http;
using Cloudlets.Controller.Telemetry;
using Cloudlets.Core.Options;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Primitives;

namespace Cloudlets.Controller.Hosting;

/// <summary>
/// Applies configuration reloads (the JSON file changed, or SIGHUP): the new configuration is
/// validated like at start; when invalid nothing changes and every error is logged and audited.
/// When valid, what can change at run time is applied — <c>Rules</c> (replacing the rules in force,
/// operator changes included) and the operator token (<c>Http:Token</c>, <c>Http:TokenFile</c>) —
/// and every other changed section is named as needing a restart. Each reload that changed anything
/// is one <c>config.reload</c> record in the audit log.
/// </summary>
public sealed class ControllerConfigurationReload : IHostedService, IDisposable
{
    private static readonly string[] LiveKeys = ["Controller:Http:Token", "Controller:Http:TokenFile"];
    private readonly IConfigurationRoot _configuration;
    private readonly ControllerState _state;
    private readonly AuditLog _audit;
    private readonly OperatorToken _token;
    private readonly ILogger _logger;
    private readonly Lock _gate = new();
    private Dictionary<string, string?> _baseline;
    private IDisposable? _watch;
    private PosixSignalRegistration? _hangup;

    /// <summary>Creates the reload for <paramref name="configuration"/> as it is now (the baseline).</summary>
    public ControllerConfigurationReload(IConfigurationRoot configuration, ControllerState state, AuditLog audit, OperatorToken token, ILoggerFactory loggers)
    {
        _configuration = configuration ?? throw new ArgumentNullException(nameof(configuration));
        _state = state ?? throw new ArgumentNullException(nameof(state));
        _audit = audit ?? throw new ArgumentNullException(nameof(audit));
        _token = token ?? throw new ArgumentNullException(nameof(token));
        ArgumentNullException.ThrowIfNull(loggers);
        _logger = loggers.CreateLogger(ControllerService.LoggerCategory);
        _baseline = Flatten(configuration);
    }

    /// <inheritdoc />
    public Task StartAsync(CancellationToken cancellationToken)
    {
        _watch = ChangeToken.OnChange(_configuration.GetReloadToken, Apply);
        if (!OperatingSystem.IsWindows())
        {
            // SIGHUP (systemctl reload) re-reads every source; its default action would end the process.
            _hangup = PosixSignalRegistration.Create(PosixSignal.SIGHUP, context =>
            {
                context.Cancel = true;
                _configuration.Reload();
            });
        }

        return Task.CompletedTask;
    }

    /// <inheritdoc />
    public Task StopAsync(CancellationToken cancellationToken)
    {
        Dispose();
        return Task.CompletedTask;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _hangup?.Dispose();
        _hangup = null;
        _watch?.Dispose();
        _watch = null;
    }

    /// <summary>Reads the configuration as it is now and applies what changed (see the type's remarks).</summary>
    public void Apply()
    {
        lock (_gate)
        {
            var now = Flatten(_configuration);
            var changed = now.Keys.Union(_baseline.Keys, StringComparer.OrdinalIgnoreCase)
                .Where(k => !string.Equals(now.GetValueOrDefault(k), _baseline.GetValueOrDefault(k), StringComparison.Ordinal))
                .ToList();
            if (changed.Count == 0)
            {
                return;
            }

            var errors = new OptionsErrors();
            var options = ControllerConfiguration.TryLoad(_configuration, errors);
            if (errors.HasErrors || options is null)
            {
                var list = errors.Errors.Select(e => e.ToString()).ToList();
                var text = string.Join("; ", list);
                ControllerLog.ConfigurationReloadInvalid(_logger, text);
                _audit.ConfigurationReload(valid: false, [], [], list);
                return; // the baseline stays: the next valid file is compared with what runs
            }

            var applied = new List<string>();
            var restart = new SortedSet<string>(StringComparer.Ordinal);
            var problems = new List<string>();
            if (changed.Any(k => k.StartsWith("Controller:Rules", StringComparison.OrdinalIgnoreCase)))
            {
                if (_state.Pipeline is { } control)
                {
                    try
                    {
                        control.ReplaceRules(options.Rules, "configuration");
                        applied.Add("Rules");
                    }
                    catch (Core.Options.OptionsValidationException ex)
                    {
                        problems.AddRange(ex.Errors.Select(e => "Rules." + e));
                    }
                }
                else
                {
                    restart.Add("Rules");
                }
            }

            if (changed.Any(k => LiveKeys.Contains(k, StringComparer.OrdinalIgnoreCase)))
            {
                _token.Replace(options.Http.ResolveToken());
                applied.Add("Http.Token");
            }

            foreach (var key in changed.Where(k => !k.StartsWith("Controller:Rules", StringComparison.OrdinalIgnoreCase) && !LiveKeys.Contains(k, StringComparer.OrdinalIgnoreCase)))
            {
                var parts = key.Split(':');
                restart.Add(parts.Length > 1 && parts[0].Equals(ControllerOptions.SectionName, StringComparison.OrdinalIgnoreCase) ? parts[1] : parts[0]);
            }

            _baseline = now;
            if (problems.Count > 0)
            {
                var problemText = string.Join("; ", problems);
                ControllerLog.ConfigurationReloadInvalid(_logger, problemText);
            }
            else
            {
                var appliedText = string.Join(", ", applied);
                var restartText = string.Join(", ", restart);
                ControllerLog.ConfigurationReloaded(_logger, appliedText, restartText);
            }

            _audit.ConfigurationReload(problems.Count == 0, applied, [.. restart], problems);
        }
    }

    private static Dictionary<string, string?> Flatten(IConfiguration configuration) =>
        configuration.AsEnumerable()
            .Where(kv => kv.Value is not null && !kv.Key.StartsWith("Logging", StringComparison.OrdinalIgnoreCase))
            .GroupBy(kv => kv.Key, StringComparer.OrdinalIgnoreCase)
            .ToDictionary(g => g.Key, g => g.First().Value, StringComparer.OrdinalIgnoreCase);
}
