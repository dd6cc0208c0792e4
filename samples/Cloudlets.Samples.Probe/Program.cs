// cloudlets-probe: probes many targets like `fping -C`, by ICMP echo or by TCP connect.
// Exit codes: 0 every target answered, 1 some target never answered, 2 bad input, 3 probing impossible.
return await Cloudlets.Samples.Probe.ProbeCommand.RunAsync(args);
