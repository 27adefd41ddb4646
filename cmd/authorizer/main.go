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
// A route not listed is denied; of overlapping routes the most specific
// wins (see moreSpecific). It answers HTTP API requests (payload 2.0,
// simple responses with context) and REST API requests (TOKEN and REQUEST
// authorizers: an IAM policy with context; a missing or invalid token is
// the error "Unauthorized", which API Gateway turns into 401).
package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/rs/zerolog"
	"go.yaml.in/yaml/v3"

	"github.com/pretoken/pretoken/authz"
	"github.com/pretoken/pretoken/permissions"
)

func main() {
	log := zerolog.New(os.Stdout).With().Timestamp().Logger()
	a, err := load(os.Getenv("PRETOKEN_AUTHORIZER_CONFIG"))
	if err != nil {
		log.Error().Str("error", err.Error()).Msg("authorizer cannot start")
		os.Exit(1)
	}
	a.log = log
	lambda.StartHandlerFunc(a.Invoke)
}

// config is the authorizer's file.
type config struct {
	Issuer     string           `yaml:"issuer"`
	Region     string           `yaml:"region"`
	UserPoolID string           `yaml:"userPoolId"`
	Clients    []string         `yaml:"clients"`
	TokenUse   string           `yaml:"tokenUse"`
	Policy     string           `yaml:"policy"`
	Claims     *authz.Claims    `yaml:"claims"` // instead of policy: {permissions, roles, tenant, scopePrefix, scopes}
	Routes     map[string]route `yaml:"routes"`
}

// route is what one "METHOD /path" needs; every check given must pass.
type route struct {
	Permission string `yaml:"permission"`
	Role       string `yaml:"role"`
	// Tenant is "{param}": the token's tenant must equal that path parameter.
	Tenant string `yaml:"tenant"`
}

type authorizer struct {
	v      *authz.Verifier
	routes []compiled
	log    zerolog.Logger
}

type compiled struct {
	method string
	parts  []string // path segments; "{name}" matches one segment
	route
}

func load(path string) (*authorizer, error) {
	if path == "" {
		return nil, errors.New("set PRETOKEN_AUTHORIZER_CONFIG to the authorizer's config file")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var c config
	// ${NAME} is the environment variable NAME: a deployment fills in its pool.
	dec := yaml.NewDecoder(strings.NewReader(os.Expand(string(b), func(k string) string { return os.Getenv(k) })))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	cfg := authz.Config{Issuer: c.Issuer, Region: c.Region, UserPoolID: c.UserPoolID, ClientIDs: c.Clients, TokenUse: authz.TokenUse(c.TokenUse)}
	switch {
	case c.Policy != "" && c.Claims != nil:
		return nil, fmt.Errorf("%s: name the claims with policy or claims, not both", path)
	case c.Policy != "":
		pf := c.Policy
		if !filepath.IsAbs(pf) {
			pf = filepath.Join(filepath.Dir(path), pf)
		}
		p, err := permissions.ReadFile(pf)
		if err != nil {
			return nil, err
		}
		if len(c.Clients) == 0 {
			return nil, fmt.Errorf("%s: name the accepted clients", path)
		}
		if cfg.Claims, err = authz.ClaimsFromPolicy(p, c.Clients[0]); err != nil {
			return nil, err
		}
	case c.Claims != nil:
		cfg.Claims = *c.Claims
	}
	v, err := authz.New(cfg)
	if err != nil {
		return nil, err
	}
	a := &authorizer{v: v}
	for key, r := range c.Routes {
		method, p, ok := strings.Cut(key, " ")
		if !ok || !strings.HasPrefix(p, "/") {
			return nil, fmt.Errorf("%s: route %q must be \"METHOD /path\"", path, key)
		}
		cr := compiled{method: strings.ToUpper(method), parts: strings.Split(strings.Trim(p, "/"), "/"), route: r}
		if r.Tenant != "" && !slices.Contains(cr.parts, r.Tenant) {
			return nil, fmt.Errorf("%s: route %q: tenant %q is not one of its path parameters", path, key, r.Tenant)
		}
		if r.Permission == "" && r.Role == "" && r.Tenant == "" {
			return nil, fmt.Errorf("%s: route %q checks nothing; list what it needs (or leave it out: unlisted routes are denied)", path, key)
		}
		a.routes = append(a.routes, cr)
	}
	slices.SortFunc(a.routes, moreSpecific)
	return a, nil
}

// moreSpecific orders routes for match, which takes the first that fits:
// at the first segment where two routes differ, a literal goes before a
// {parameter}, and a method before ANY. So "GET /orders/mine" wins over
// "GET /orders/{id}" and "ANY /orders/mine" for GET /orders/mine, whatever
// order the config's map gave them in. The rest only makes the order total.
func moreSpecific(x, y compiled) int {
	for i := range min(len(x.parts), len(y.parts)) {
		if px, py := isParam(x.parts[i]), isParam(y.parts[i]); px != py {
			if px {
				return 1
			}
			return -1
		}
	}
	if ax, ay := x.method == "ANY", y.method == "ANY"; ax != ay {
		if ax {
			return 1
		}
		return -1
	}
	return cmp.Or(cmp.Compare(len(x.parts), len(y.parts)), slices.Compare(x.parts, y.parts), cmp.Compare(x.method, y.method))
}

func isParam(seg string) bool { return strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "}") }

// match finds the route for method and path, with its path parameters.
func (a *authorizer) match(method, path string) (*compiled, map[string]string) {
	segs := strings.Split(strings.Trim(path, "/"), "/")
	for i := range a.routes {
		r := &a.routes[i]
		if r.method != method && r.method != "ANY" || len(r.parts) != len(segs) {
			continue
		}
		params := map[string]string{}
		ok := true
		for j, p := range r.parts {
			if isParam(p) {
				params[p] = segs[j]
			} else if p != segs[j] {
				ok = false
				break
			}
		}
		if ok {
			return r, params
		}
	}
	return nil, nil
}

// decide verifies the token and checks the route. It returns the principal
// (nil for a missing or invalid token) and why access is denied ("" when
// it is allowed).
func (a *authorizer) decide(ctx context.Context, token, method, path string) (*authz.Principal, string) {
	token, _ = strings.CutPrefix(strings.TrimSpace(token), "Bearer ")
	if token == "" {
		return nil, "no token"
	}
	p, err := a.v.Verify(ctx, token)
	if err != nil {
		return nil, err.Error()
	}
	r, params := a.match(method, path)
	switch {
	case r == nil:
		return p, "route not listed"
	case r.Permission != "" && !p.HasPermission(r.Permission):
		return p, "lacks permission " + r.Permission
	case r.Role != "" && !p.HasRole(r.Role):
		return p, "lacks role " + r.Role
	case r.Tenant != "" && (p.Tenant() == "" || p.Tenant() != params[r.Tenant]):
		return p, "token is for another tenant"
	}
	return p, ""
}

// event holds the fields of the three request shapes that the authorizer reads.
type event struct {
	Version  string `json:"version"`
	Type     string `json:"type"`
	RouteKey string `json:"routeKey"`
	RawPath  string `json:"rawPath"`
	// HTTP API 2.0
	IdentitySource []string          `json:"identitySource"`
	Headers        map[string]string `json:"headers"`
	RequestContext struct {
		HTTP struct {
			Method string `json:"method"`
			Path   string `json:"path"`
		} `json:"http"`
	} `json:"requestContext"`
	// REST
	AuthorizationToken string `json:"authorizationToken"`
	MethodArn          string `json:"methodArn"`
	HTTPMethod         string `json:"httpMethod"`
	Path               string `json:"path"`
}

// Invoke answers one authorizer request.
func (a *authorizer) Invoke(ctx context.Context, raw json.RawMessage) (any, error) {
	var ev event
	if err := json.Unmarshal(raw, &ev); err != nil {
		return nil, errors.New("Unauthorized")
	}
	if ev.Version == "2.0" {
		token := header(ev.Headers, "authorization")
		if len(ev.IdentitySource) > 0 {
			token = ev.IdentitySource[0]
		}
		method, path := ev.RequestContext.HTTP.Method, ev.RawPath
		if method == "" || path == "" {
			method, path, _ = strings.Cut(ev.RouteKey, " ")
		}
		p, why := a.decide(ctx, token, method, path)
		a.logDecision(ev, method, path, p, why)
		return simpleResponse{IsAuthorized: why == "", Context: contextOf(p)}, nil
	}
	// REST: TOKEN or REQUEST.
	token := ev.AuthorizationToken
	if ev.Type == "REQUEST" {
		token = header(ev.Headers, "authorization")
	}
	method, path := restRoute(ev)
	p, why := a.decide(ctx, token, method, path)
	a.logDecision(ev, method, path, p, why)
	if p == nil {
		return nil, errors.New("Unauthorized") // API Gateway answers 401
	}
	effect := "Allow"
	if why != "" {
		effect = "Deny" // API Gateway answers 403
	}
	return iamResponse{PrincipalID: p.Sub, PolicyDocument: policyDocument{Version: "2012-10-17",
		Statement: []statement{{Action: "execute-api:Invoke", Effect: effect, Resource: ev.MethodArn}}}, Context: contextOf(p)}, nil
}

// restRoute is the method and path of a REST request: from the REQUEST
// event's own fields, or from the TOKEN event's method ARN
// (arn:aws:execute-api:region:account:api/stage/METHOD/path...).
func restRoute(ev event) (string, string) {
	if ev.HTTPMethod != "" && ev.Path != "" {
		return ev.HTTPMethod, ev.Path
	}
	parts := strings.SplitN(ev.MethodArn, "/", 4)
	if len(parts) < 3 {
		return "", ""
	}
	path := "/"
	if len(parts) == 4 {
		path += parts[3]
	}
	return parts[2], path
}

func header(h map[string]string, name string) string {
	for k, v := range h {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return ""
}

func (a *authorizer) logDecision(ev event, method, path string, p *authz.Principal, why string) {
	e := a.log.Info()
	if why != "" {
		e = a.log.Warn().Str("denied", why)
	}
	if p != nil {
		e = e.Str("sub", p.Sub).Str("client_id", p.ClientID)
	}
	e.Str("method", method).Str("path", path).Str("type", ev.Type).Msg("authorize")
}

type simpleResponse struct {
	IsAuthorized bool              `json:"isAuthorized"`
	Context      map[string]string `json:"context,omitempty"`
}

type iamResponse struct {
	PrincipalID    string            `json:"principalId"`
	PolicyDocument policyDocument    `json:"policyDocument"`
	Context        map[string]string `json:"context,omitempty"`
}

type policyDocument struct {
	Version   string      `json:"Version"`
	Statement []statement `json:"Statement"`
}

type statement struct {
	Action   string `json:"Action"`
	Effect   string `json:"Effect"`
	Resource string `json:"Resource"`
}

// contextOf is what the backend receives in the authorizer context.
func contextOf(p *authz.Principal) map[string]string {
	if p == nil {
		return nil
	}
	c := map[string]string{"sub": p.Sub, "username": p.Username, "clientId": p.ClientID, "tokenUse": string(p.TokenUse)}
	if t := p.Tenant(); t != "" {
		c["tenant"] = t
	}
	return c
}
