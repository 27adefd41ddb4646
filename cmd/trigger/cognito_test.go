package main_test

// End to end with real tokens: cognito-local (which signs RS256 JWTs and
// calls the pre token generation trigger through the Lambda Invoke API) →
// the trigger under aws-lambda-rie → DynamoDB Local.

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/pretoken/pretoken/internal/dynamotest"
	"github.com/pretoken/pretoken/internal/lambdatest"
	"github.com/pretoken/pretoken/permissions/dynamo"
)

const cognitoLocalVar = "PRETOKEN_TEST_COGNITO_LOCAL"

// startCognitoLocal runs cognito-local with the trigger at lambdaURL and
// returns its base URL.
func startCognitoLocal(t *testing.T, lambdaEndpoint string) string {
	t.Helper()
	bin := dynamotest.Need(t, cognitoLocalVar, "cognito-local")
	dir := t.TempDir()
	port := lambdatest.FreePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	cfg := map[string]any{
		"LambdaClient": map[string]any{
			"endpoint":    lambdaEndpoint,
			"region":      "local",
			"credentials": map[string]string{"accessKeyId": "local", "secretAccessKey": "local"},
		},
		"TriggerFunctions": map[string]string{"PreTokenGeneration": "function"},
		"ServerConfig":     map[string]any{"hostname": "127.0.0.1", "port": port},
		"TokenConfig":      map[string]string{"IssuerDomain": base},
	}
	if err := os.MkdirAll(filepath.Join(dir, ".cognito"), 0o755); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(cfg)
	if err := os.WriteFile(filepath.Join(dir, ".cognito", "config.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin)
	cmd.Dir = dir
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start cognito-local: %v", err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("cognito-local output:\n%s", logs.String())
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
			c.Close()
			return base
		}
		if time.Now().After(deadline) {
			t.Fatalf("cognito-local did not listen within 30s:\n%s", logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// idp calls a Cognito user pool API operation on cognito-local.
func idp(t *testing.T, base, op string, in any) map[string]any {
	t.Helper()
	body, _ := json.Marshal(in)
	req, _ := http.NewRequest(http.MethodPost, base+"/", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "AWSCognitoIdentityProviderService."+op)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s: %v", op, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: HTTP %d: %s", op, resp.StatusCode, raw)
	}
	var out map[string]any
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatalf("%s: %v: %s", op, err, raw)
		}
	}
	return out
}

func field(t *testing.T, m map[string]any, path ...string) string {
	t.Helper()
	var v any = m
	for _, p := range path {
		mm, ok := v.(map[string]any)
		if !ok {
			t.Fatalf("no %v in %v", path, m)
		}
		v = mm[p]
	}
	s, ok := v.(string)
	if !ok {
		t.Fatalf("%v is %T in %v", path, v, m)
	}
	return s
}

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
	base := startCognitoLocal(t, strings.TrimSuffix(fn.URL, "/2015-03-31/functions/function/invocations"))

	pool := field(t, idp(t, base, "CreateUserPool", map[string]any{"PoolName": "pretoken-e2e"}), "UserPool", "Id")
	clientID := field(t, idp(t, base, "CreateUserPoolClient", map[string]any{"UserPoolId": pool, "ClientName": "web"}), "UserPoolClient", "ClientId")
	const email, password = "maria@example.com", "Sup3r-secret-pw!"
	idp(t, base, "AdminCreateUser", map[string]any{"UserPoolId": pool, "Username": email, "TemporaryPassword": "Temp-pw-123!", "MessageAction": "SUPPRESS",
		"UserAttributes": []map[string]string{{"Name": "email", "Value": email}, {"Name": "custom:tenant_id", "Value": "tenant-7"}}})
	idp(t, base, "AdminSetUserPassword", map[string]any{"UserPoolId": pool, "Username": email, "Password": password, "Permanent": true})
	var sub string
	for _, a := range idp(t, base, "AdminGetUser", map[string]any{"UserPoolId": pool, "Username": email})["UserAttributes"].([]any) {
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

	auth := idp(t, base, "InitiateAuth", map[string]any{"AuthFlow": "USER_PASSWORD_AUTH", "ClientId": clientID,
		"AuthParameters": map[string]string{"USERNAME": email, "PASSWORD": password}})
	jwks := base + "/" + pool + "/.well-known/jwks.json"
	claims := verifyJWT(t, field(t, auth, "AuthenticationResult", "IdToken"), jwks)
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

	// Take the assignment away: the next refresh no longer carries it.
	if _, err := store.Unassign(ctx, sub, []string{"refunder"}, "e2e-test"); err != nil {
		t.Fatal(err)
	}
	refreshed := idp(t, base, "InitiateAuth", map[string]any{"AuthFlow": "REFRESH_TOKEN_AUTH", "ClientId": clientID,
		"AuthParameters": map[string]string{"REFRESH_TOKEN": field(t, auth, "AuthenticationResult", "RefreshToken")}})
	claims = verifyJWT(t, field(t, refreshed, "AuthenticationResult", "IdToken"), jwks)
	if claims["app_roles"] != "viewer" || claims["app_permissions"] != "catalog:read orders:read" {
		t.Errorf("after unassigning, the refreshed ID token has roles %v, permissions %v", claims["app_roles"], claims["app_permissions"])
	}
}
