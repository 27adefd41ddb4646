package main_test

// End to end with real tokens: cognito-local (which signs RS256 JWTs and
// calls the pre token generation trigger through the Lambda Invoke API) →
// the trigger under aws-lambda-rie → DynamoDB Local.

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/pretoken/pretoken/authz"
	"github.com/pretoken/pretoken/internal/cognitotest"
	"github.com/pretoken/pretoken/internal/dynamotest"
	"github.com/pretoken/pretoken/internal/lambdatest"
	"github.com/pretoken/pretoken/permissions/dynamo"
)

// verifyJWT checks an RS256 token's signature against the issuer's JWKS and
// returns its claims.
func verifyJWT(t *testing.T, token, jwksURL string) map[string]any {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", token)
	}
	dec := func(s string) []byte {
		b, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil {
			t.Fatalf("JWT part: %v", err)
		}
		return b
	}
	var header struct{ Alg, Kid string }
	if err := json.Unmarshal(dec(parts[0]), &header); err != nil || header.Alg != "RS256" {
		t.Fatalf("JWT header %+v, %v; want RS256", header, err)
	}
	resp, err := http.Get(jwksURL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var jwks struct {
		Keys []struct{ Kid, Kty, N, E string }
	}
	if err := json.NewDecoder(resp.Body).Decode(&jwks); err != nil {
		t.Fatalf("JWKS: %v", err)
	}
	var key *rsa.PublicKey
	for _, k := range jwks.Keys {
		if k.Kid == header.Kid && k.Kty == "RSA" {
			key = &rsa.PublicKey{N: new(big.Int).SetBytes(dec(k.N)), E: int(new(big.Int).SetBytes(dec(k.E)).Int64())}
		}
	}
	if key == nil {
		t.Fatalf("no key %q in the JWKS", header.Kid)
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err := rsa.VerifyPKCS1v15(key, crypto.SHA256, sum[:], dec(parts[2])); err != nil {
		t.Fatalf("signature does not verify against the JWKS: %v", err)
	}
	var claims map[string]any
	if err := json.Unmarshal(dec(parts[1]), &claims); err != nil {
		t.Fatal(err)
	}
	return claims
}

func TestCognitoLocalRealTokens(t *testing.T) {
	client := dynamotest.Client(t)
	table := dynamotest.Table(t, client)
	store := dynamo.New(client, table)
	ctx := context.Background()
	if _, err := store.Apply(ctx, examplePolicyOf(t), dynamo.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	fn := lambdatest.Start(t, lambdatest.Build(t, "."), dynamoEnv(table, dynamotest.Endpoint(t), map[string]string{
		"PRETOKEN_USER_ASSIGNMENTS": "true", "PRETOKEN_REFRESH_INTERVAL": "1s"}))
	base := cognitotest.Start(t, strings.TrimSuffix(fn.URL, "/2015-03-31/functions/function/invocations"))

	pool := cognitotest.Field(t, cognitotest.Call(t, base, "CreateUserPool", map[string]any{"PoolName": "pretoken-e2e"}), "UserPool", "Id")
	clientID := cognitotest.Field(t, cognitotest.Call(t, base, "CreateUserPoolClient", map[string]any{"UserPoolId": pool, "ClientName": "web"}), "UserPoolClient", "ClientId")
	const email, password = "maria@example.com", "Sup3r-secret-pw!"
	cognitotest.Call(t, base, "AdminCreateUser", map[string]any{"UserPoolId": pool, "Username": email, "TemporaryPassword": "Temp-pw-123!", "MessageAction": "SUPPRESS",
		"UserAttributes": []map[string]string{{"Name": "email", "Value": email}, {"Name": "custom:tenant_id", "Value": "tenant-7"}}})
	cognitotest.Call(t, base, "AdminSetUserPassword", map[string]any{"UserPoolId": pool, "Username": email, "Password": password, "Permanent": true})
	var sub string
	for _, a := range cognitotest.Call(t, base, "AdminGetUser", map[string]any{"UserPoolId": pool, "Username": email})["UserAttributes"].([]any) {
		if a := a.(map[string]any); a["Name"] == "sub" {
			sub = a["Value"].(string)
		}
	}
	if sub == "" {
		t.Fatal("user has no sub")
	}
	if _, err := store.Assign(ctx, sub, []string{"refunder"}, "e2e-test"); err != nil {
		t.Fatal(err)
	}

	auth := cognitotest.Call(t, base, "InitiateAuth", map[string]any{"AuthFlow": "USER_PASSWORD_AUTH", "ClientId": clientID,
		"AuthParameters": map[string]string{"USERNAME": email, "PASSWORD": password}})
	jwks := base + "/" + pool + "/.well-known/jwks.json"
	claims := verifyJWT(t, cognitotest.Field(t, auth, "AuthenticationResult", "IdToken"), jwks)
	want := map[string]any{
		"app_roles":       "refunder viewer",                        // default viewer + assigned refunder, V1: one string
		"app_permissions": "catalog:read orders:read orders:refund", // no allow-list on the ID token
		"tenant":          "tenant-7",
		"sub":             sub,
		"aud":             clientID,
		"iss":             base + "/" + pool,
		"token_use":       "id",
	}
	for k, v := range want {
		if diff := cmp.Diff(v, claims[k]); diff != "" {
			t.Errorf("ID token claim %s (-want +got):\n%s", k, diff)
		}
	}

	// The downstream side reads the same token with the trigger's meaning.
	names, err := authz.ClaimsFromPolicy(examplePolicyOf(t), clientID)
	if err != nil {
		t.Fatal(err)
	}
	v, err := authz.New(authz.Config{Issuer: base + "/" + pool, ClientIDs: []string{clientID}, TokenUse: authz.ID, Claims: names})
	if err != nil {
		t.Fatal(err)
	}
	pr, err := v.Verify(ctx, cognitotest.Field(t, auth, "AuthenticationResult", "IdToken"))
	if err != nil {
		t.Fatalf("authz rejects cognito-local's ID token: %v", err)
	}
	if !pr.HasPermission("orders:refund") || pr.HasPermission("orders:write") || !pr.HasRole("refunder") || pr.Sub != sub {
		t.Errorf("authz reads the V1 token as %+v: refund %v, write %v", pr, pr.HasPermission("orders:refund"), pr.HasPermission("orders:write"))
	}
	if _, err := v.Verify(ctx, cognitotest.Field(t, auth, "AuthenticationResult", "AccessToken")); err == nil {
		t.Error("an access token passed where an ID token is required")
	}

	// Take the assignment away: the next refresh no longer carries it.
	if _, err := store.Unassign(ctx, sub, []string{"refunder"}, "e2e-test"); err != nil {
		t.Fatal(err)
	}
	refreshed := cognitotest.Call(t, base, "InitiateAuth", map[string]any{"AuthFlow": "REFRESH_TOKEN_AUTH", "ClientId": clientID,
		"AuthParameters": map[string]string{"REFRESH_TOKEN": cognitotest.Field(t, auth, "AuthenticationResult", "RefreshToken")}})
	claims = verifyJWT(t, cognitotest.Field(t, refreshed, "AuthenticationResult", "IdToken"), jwks)
	if claims["app_roles"] != "viewer" || claims["app_permissions"] != "catalog:read orders:read" {
		t.Errorf("after unassigning, the refreshed ID token has roles %v, permissions %v", claims["app_roles"], claims["app_permissions"])
	}
}
