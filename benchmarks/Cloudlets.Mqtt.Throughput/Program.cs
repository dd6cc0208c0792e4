// cloudlets-mqtt-throughput: agents' samples through a real mosquitto into MqttLatencySampleSource, measured in one run.
//   dotnet run -c Release --project benchmarks/Cloudlets.Mqtt.Throughput -- [--processes 10] [--vantage-points 100] [--targets 100] [--seconds 30] [--json]
// Agent processes each simulate several vantage points (one MqttLatencyPublisher and one broker connection per
// vantage point, the agent's publisher), posting one sample per target per second spread over the second.
return args is ["worker", ..] ? await Cloudlets.Mqtt.Throughput.Worker.RunAsync(args[1..]) : await Cloudlets.Mqtt.Throughput.Controller.RunAsync(args);
