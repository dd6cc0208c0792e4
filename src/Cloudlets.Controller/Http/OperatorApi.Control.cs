using Cloudlets.Controller.Hosting;
using Microsoft.AspNetCore.Routing;

namespace Cloudlets.Controller.Http;

public static partial class ControllerEndpoints
{
    // The state-changing calls arrive with Core's placement rules (IPlacementControl).
    private static void MapControl(RouteGroupBuilder api) => _ = api;

    private static bool IsDrained(ControllerState state, string host) => state is null && host is null;

    private static bool IsPinned(ControllerState state, string vm) => state is null && vm is null;
}
