// Command authorizer is an API Gateway Lambda authorizer built on package
// authz, for what the built-in authorizers cannot check: ID-token claims on
// Lite pools (V1_0), roles, tenants. It reads the file named by
// PRETOKEN_AUTHORIZER_CONFIG:
//
//	issuer: https://cognito-idp.us-east-1.amazonaws.com/us-east-1_EXAMPLE   # or region + userPoolId
//	clients: [4webappclient0000]
//	tokenUse: id                       # id | access | any
//	policy: policy.yaml                # optional: claim names and scope prefix from this client's profile
//	routes:
//	  "GET /orders":                  {permission: "orders:read"}
//	  "DELETE /orders/{id}":          {role: admin}
//	  "GET /tenants/{tenant}/orders": {permission: "orders:read", tenant: "{tenant}"}
//
// A route not listed is denied. The route is the one API Gateway matched:
// the HTTP API's routeKey (payload 2.0, simple responses with context), the
// REST REQUEST authorizer's resource and httpMethod, or for a REST TOKEN
// authorizer, which is told only the method ARN, the actual path matched
// strictly (package routes). REST answers are an IAM policy with context; a
// missing or invalid token is the error "Unauthorized", which API Gateway
// turns into 401.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/rs/zerolog"
	"go.yaml.in/yaml/v3"

	"github.com/pretoken/pretoken/authz"
	"github.com/pretoken/pretoken/authz/routes"
	"github.com/pretoken/pretoken/permissions"
)

func main() {
	log := zerolog.New(os.Stdout).With().Timestamp().Logger()
	a, err := start(os.Getenv("PRETOKEN_AUTHORIZER_CONFIG"), log)
	if err != nil {
		log.Error().Str("error", err.Error()).Msg("authorizer cannot start")
		os.Exit(1)
	}
	lambda.StartHandlerFunc(a.Invoke)
}

// start is the authorizer's init: load the config, then fetch the keys,
// so the first request does not wait for them. A failed fetch is logged;
// requests fetch again.
func start(path string, log zerolog.Logger) (*authorizer, error) {
	a, err := load(path)
	if err != nil {
		return nil, err
	}
	a.log = log
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := a.v.Prefetch(ctx); err != nil {
		log.Warn().Str("error", err.Error()).Msg("JWKS prefetch failed; requests will fetch again")
	}
	return a, nil
}

// config is the authorizer's file.
type config struct {
	Issuer     string   `yaml:"issuer"`
	Region     string   `yaml:"region"`
	UserPoolID string   `yaml:"userPoolId"`
	Clients    []string `yaml:"clients"`
	TokenUse   string   `yaml:"tokenUse"`
	Policy     string   `yaml:"policy"`
	// Client names the profile of policy to read when clients lists several.
	Client string                 `yaml:"client"`
	Claims *authz.Claims          `yaml:"claims"` // instead of policy: {permissions, roles, tenant, scopePrefix, scopes}
	Routes map[string]routes.Rule `yaml:"routes"`
}

type authorizer struct {
	v      *authz.Verifier
	routes routes.Routes
	log    zerolog.Logger
}

// envRef is the only form expanded: ${NAME}. A bare $ stays as it is, so a
// value such as pay$out keeps its text.
var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// expand replaces each ${NAME} with the environment variable NAME, which
// must be set.
func expand(s string) (string, error) {
	var missing []string
	out := envRef.ReplaceAllStringFunc(s, func(ref string) string {
		name := envRef.FindStringSubmatch(ref)[1]
		v, ok := os.LookupEnv(name)
		if !ok {
			missing = append(missing, name)
		}
		return v
	})
	if missing != nil {
		return "", fmt.Errorf("environment variables not set: %s", strings.Join(missing, ", "))
	}
	return out, nil
}

func load(path string) (*authorizer, error) {
	if path == "" {
		return nil, errors.New("set PRETOKEN_AUTHORIZER_CONFIG to the authorizer's config file")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	text, err := expand(string(b))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var c config
	dec := yaml.NewDecoder(strings.NewReader(text))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(c.Clients) == 0 {
		return nil, fmt.Errorf("%s: name the accepted clients", path)
	}
	for _, id := range c.Clients {
		if strings.TrimSpace(id) == "" {
			return nil, fmt.Errorf("%s: clients: an empty client id (is its environment variable empty?)", path)
		}
	}
	cfg := authz.Config{Issuer: c.Issuer, Region: c.Region, UserPoolID: c.UserPoolID, ClientIDs: c.Clients, TokenUse: authz.TokenUse(c.TokenUse)}
	switch {
	case c.Policy != "" && c.Claims != nil:
		return nil, fmt.Errorf("%s: name the claims with policy or claims, not both", path)
	case c.Policy != "":
		client := c.Client
		switch {
		case client == "" && len(c.Clients) > 1:
			return nil, fmt.Errorf("%s: clients lists %d clients: say with client: whose profile in %s names the claims", path, len(c.Clients), c.Policy)
		case client == "":
			client = c.Clients[0]
		case !slices.Contains(c.Clients, client):
			return nil, fmt.Errorf("%s: client %q is not one of clients", path, client)
		}
		pf := c.Policy
		if !filepath.IsAbs(pf) {
			pf = filepath.Join(filepath.Dir(path), pf)
		}
		p, err := permissions.ReadFile(pf)
		if err != nil {
			return nil, err
		}
		if cfg.Claims, err = authz.ClaimsFromPolicy(p, client); err != nil {
			return nil, err
		}
	case c.Claims != nil:
		cfg.Claims = *c.Claims
	}
	if c.Client != "" && c.Policy == "" {
		return nil, fmt.Errorf("%s: client: names a profile of policy:, which is not set", path)
	}
	v, err := authz.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	entries := make([]routes.Entry, 0, len(c.Routes))
	for key, r := range c.Routes {
		entries = append(entries, routes.Entry{Key: key, Rule: r})
	}
	rs, err := routes.Compile(entries)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &authorizer{v: v, routes: rs}, nil
}

// decision is what the authorizer decided for one request, and why.
type decision struct {
	principal *authz.Principal // nil for a missing or invalid token
	route     string           // the configured route that decided, if any
	why       string           // "" when allowed
}

// decide verifies the token and checks the route that match finds.
func (a *authorizer) decide(ctx context.Context, token string, match func() (*routes.Route, map[string]string, error)) decision {
	token = strings.TrimSpace(token)
	if scheme, rest, ok := strings.Cut(token, " "); ok && strings.EqualFold(scheme, "Bearer") {
		token = strings.TrimSpace(rest)
	}
	if token == "" {
		return decision{why: "no token"}
	}
	p, err := a.v.Verify(ctx, token)
	if err != nil {
		return decision{why: err.Error()}
	}
	d := decision{principal: p}
	r, params, err := match()
	if err != nil {
		d.why = err.Error()
		return d
	}
	d.route = r.Key
	switch {
	case r.Permission != "" && !p.HasPermission(r.Permission):
		d.why = "lacks permission " + r.Permission
	case r.Role != "" && !p.HasRole(r.Role):
		d.why = "lacks role " + r.Role
	case r.Tenant != "" && (p.Tenant() == "" || p.Tenant() != params[strings.Trim(r.Tenant, "{}")]):
		d.why = "token is for another tenant"
	}
	return d
}

// fromTemplate matches what API Gateway matched and checks the path
// parameters it passed.
func fromTemplate(r *routes.Route, err error, raw map[string]string) (*routes.Route, map[string]string, error) {
	if err != nil {
		return nil, nil, err
	}
	params, err := r.Params(raw)
	if err != nil {
		return nil, nil, err
	}
	return r, params, nil
}

// Invoke answers one authorizer request: HTTP API payload 2.0, REST
// REQUEST or REST TOKEN, each read into aws-lambda-go's own type.
func (a *authorizer) Invoke(ctx context.Context, raw json.RawMessage) (any, error) {
	var probe struct{ Version, Type string }
	if err := json.Unmarshal(raw, &probe); err != nil {
		return nil, errors.New("Unauthorized")
	}
	switch {
	case probe.Version == "2.0":
		var ev events.APIGatewayV2CustomAuthorizerV2Request
		if err := json.Unmarshal(raw, &ev); err != nil {
			return nil, errors.New("Unauthorized")
		}
		token := header(ev.Headers, "authorization")
		if len(ev.IdentitySource) > 0 {
			token = ev.IdentitySource[0]
		}
		method := ev.RequestContext.HTTP.Method
		d := a.decide(ctx, token, func() (*routes.Route, map[string]string, error) {
			r, err := a.routes.MatchKey(ev.RouteKey, method)
			return fromTemplate(r, err, ev.PathParameters)
		})
		a.logDecision("HTTP", ev.RouteKey, method, ev.RawPath, d)
		return events.APIGatewayV2CustomAuthorizerSimpleResponse{IsAuthorized: d.principal != nil && d.why == "", Context: contextOf(d.principal)}, nil
	case probe.Version == "" && probe.Type == "REQUEST":
		var ev events.APIGatewayCustomAuthorizerRequestTypeRequest
		if err := json.Unmarshal(raw, &ev); err != nil {
			return nil, errors.New("Unauthorized")
		}
		d := a.decide(ctx, header(ev.Headers, "authorization"), func() (*routes.Route, map[string]string, error) {
			r, err := a.routes.MatchTemplate(ev.HTTPMethod, ev.Resource)
			return fromTemplate(r, err, ev.PathParameters)
		})
		a.logDecision("REQUEST", ev.Resource, ev.HTTPMethod, ev.Path, d)
		return iamAnswer(d, ev.MethodArn)
	case probe.Version == "" && probe.Type == "TOKEN":
		var ev events.APIGatewayCustomAuthorizerRequest
		if err := json.Unmarshal(raw, &ev); err != nil {
			return nil, errors.New("Unauthorized")
		}
		method, path := arnRoute(ev.MethodArn)
		d := a.decide(ctx, ev.AuthorizationToken, func() (*routes.Route, map[string]string, error) {
			return a.routes.MatchPath(method, path)
		})
		a.logDecision("TOKEN", "", method, path, d)
		return iamAnswer(d, ev.MethodArn)
	}
	a.log.Warn().Str("denied", "unknown event: use payload format 2.0 (HTTP API) or a REST TOKEN or REQUEST authorizer").
		Str("version", trunc(probe.Version)).Str("type", trunc(probe.Type)).Msg("authorize")
	return nil, errors.New("Unauthorized")
}

// iamAnswer is a REST authorizer's answer: the error Unauthorized (API
// Gateway answers 401) without a valid token, else a policy that allows or
// denies (403) the method.
func iamAnswer(d decision, methodArn string) (any, error) {
	if d.principal == nil {
		return nil, errors.New("Unauthorized")
	}
	effect := "Allow"
	if d.why != "" {
		effect = "Deny"
	}
	return events.APIGatewayCustomAuthorizerResponse{PrincipalID: d.principal.Sub,
		PolicyDocument: events.APIGatewayCustomAuthorizerPolicy{Version: "2012-10-17",
			Statement: []events.IAMPolicyStatement{{Action: []string{"execute-api:Invoke"}, Effect: effect, Resource: []string{methodArn}}}},
		Context: contextOf(d.principal)}, nil
}

// arnRoute is the method and the actual path in a TOKEN event's method ARN
// (arn:aws:execute-api:region:account:api/stage/METHOD/path...).
func arnRoute(arn string) (string, string) {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || parts[2] != "execute-api" {
		return "", ""
	}
	res := strings.SplitN(parts[5], "/", 4)
	if len(res) < 3 {
		return "", ""
	}
	path := "/"
	if len(res) == 4 {
		path += res[3]
	}
	return res[2], path
}

func header(h map[string]string, name string) string {
	for k, v := range h {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return ""
}

// trunc bounds what a caller sent before it reaches the log.
func trunc(s string) string {
	if len(s) > 200 {
		return s[:200] + "…"
	}
	return s
}

func (a *authorizer) logDecision(kind, matched, method, path string, d decision) {
	e := a.log.Info()
	if d.why != "" {
		e = a.log.Warn().Str("denied", d.why)
	}
	if p := d.principal; p != nil {
		e = e.Str("sub", p.Sub).Str("client_id", p.ClientID)
	}
	e.Str("type", kind).Str("matched", trunc(matched)).Str("route", d.route).Str("method", trunc(method)).Str("path", trunc(path)).Msg("authorize")
}

// contextOf is what the backend receives in the authorizer context.
func contextOf(p *authz.Principal) map[string]any {
	if p == nil {
		return nil
	}
	c := map[string]any{"sub": p.Sub, "username": p.Username, "clientId": p.ClientID, "tokenUse": string(p.TokenUse)}
	if t := p.Tenant(); t != "" {
		c["tenant"] = t
	}
	return c
}
