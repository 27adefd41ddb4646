// Command exampleapi is the downstream side of the deployed demo: a tiny
// HTTP API backend behind API Gateway's JWT authorizer on the user pool.
//
//	GET /orders  API Gateway lets the request through only if the access token
//	             has the scope orders-api/orders:read; the handler just answers.
//	GET /admin   the handler checks one claim: app_roles must include admin.
//	GET /me      echoes the caller's roles, permissions and scopes.
//
// It shows how little an API has to do once pretoken has put authorization
// into the token: package authz reads the claims with the trigger's meaning.
package main

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/pretoken/pretoken/authz"
)

func main() { lambda.Start(handle) }

// names are the example policy's claim names and scope prefix.
var names = authz.Claims{Permissions: "app_permissions", Roles: "app_roles", Scopes: true, ScopePrefix: "orders-api/"}

func handle(_ context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	var claims map[string]string
	var scopes []string
	if a := req.RequestContext.Authorizer; a != nil && a.JWT != nil {
		claims, scopes = a.JWT.Claims, a.JWT.Scopes
	}
	p := authz.FromVerifiedClaims(claims, scopes, names) // API Gateway's JWT authorizer verified the token
	switch req.RouteKey {
	case "GET /orders":
		return reply(http.StatusOK, map[string]any{"orders": []map[string]string{{"id": "o-1001", "status": "shipped"}}})
	case "GET /admin":
		if !p.HasRole("admin") {
			return reply(http.StatusForbidden, map[string]string{"message": "the admin role is required"})
		}
		return reply(http.StatusOK, map[string]string{"message": "welcome, admin"})
	case "GET /me":
		return reply(http.StatusOK, map[string]any{"sub": p.Sub, "roles": strings.Fields(strings.Trim(claims["app_roles"], "[]")),
			"permissions": strings.Fields(strings.Trim(claims["app_permissions"], "[]")), "scopes": p.Scopes,
			"can_refund": p.HasPermission("orders:refund")})
	}
	return reply(http.StatusNotFound, map[string]string{"message": "not found"})
}

func reply(status int, body any) (events.APIGatewayV2HTTPResponse, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	return events.APIGatewayV2HTTPResponse{StatusCode: status, Headers: map[string]string{"Content-Type": "application/json"}, Body: string(b)}, nil
}
