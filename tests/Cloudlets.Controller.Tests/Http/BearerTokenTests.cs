using Cloudlets.Controller.Http;

namespace Cloudlets.Controller.Tests.Http;

public sealed class BearerTokenTests
{
    private const string Token = "0123456789abcdef-secret";

    [TestCase(null, AuthorizationRefusal.MissingToken)]
    [TestCase("", AuthorizationRefusal.MissingToken)]
    [TestCase("Bearer ", AuthorizationRefusal.MissingToken)]
    [TestCase("Basic dXNlcjpwYXNz", AuthorizationRefusal.MissingToken)]
    [TestCase("Bearer 0123456789abcdef-secreT", AuthorizationRefusal.InvalidToken)]
    [TestCase("Bearer 0123456789abcdef-secret-and-more", AuthorizationRefusal.InvalidToken)]
    [TestCase("Bearer 0123456789abcdef-secret", AuthorizationRefusal.None)]
    [TestCase("bearer 0123456789abcdef-secret", AuthorizationRefusal.None)]
    public void Check_Header_GivesRefusal(string? header, AuthorizationRefusal expected) =>
        Assert.That(new BearerToken(Token).Check(header), Is.EqualTo(expected));

    [Test]
    public void Check_NoTokenConfigured_RefusesEvenTheRightLookingHeader()
    {
        var check = new BearerToken(null);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(check.IsConfigured, Is.False);
            Assert.That(check.Check("Bearer " + Token), Is.EqualTo(AuthorizationRefusal.NoTokenConfigured));
        }
    }
}
