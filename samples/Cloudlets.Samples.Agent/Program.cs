// cloudlets-agent: probes a vantage point's targets and publishes the samples to an MQTT broker.
// Exit codes: 0 stopped cleanly, 1 failed while running, 2 bad input, 3 probing impossible here.
return await Cloudlets.Samples.Agent.AgentCommand.RunAsync(args);
