// Command exampleapi is the downstream side of the deployed demo: a tiny
// HTTP API backend behind API Gateway's JWT authorizer on the user pool.
//
//	GET /orders  API Gateway lets the request through only if the access token
//	             has the scope orders-api/orders:read; the handler just answers.
//	GET /admin   the handler checks one claim: app_roles must include admin.
//	GET /me      echoes the caller's roles, permissions and scopes.
//
// It shows how little an API has to do once pretoken has put authorization
// into the token.
package main

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
)

func main() { lambda.Start(handle) }

func handle(_ context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	var claims map[string]string
	var scopes []string
	if a := req.RequestContext.Authorizer; a != nil && a.JWT != nil {
		claims, scopes = a.JWT.Claims, a.JWT.Scopes
	}
	switch req.RouteKey {
	case "GET /orders":
		return reply(http.StatusOK, map[string]any{"orders": []map[string]string{{"id": "o-1001", "status": "shipped"}}})
	case "GET /admin":
		if !slices.Contains(claimList(claims["app_roles"]), "admin") {
			return reply(http.StatusForbidden, map[string]string{"message": "the admin role is required"})
		}
		return reply(http.StatusOK, map[string]string{"message": "welcome, admin"})
	case "GET /me":
		return reply(http.StatusOK, map[string]any{"sub": claims["sub"], "roles": claimList(claims["app_roles"]),
			"permissions": claimList(claims["app_permissions"]), "scopes": scopes})
	}
	return reply(http.StatusNotFound, map[string]string{"message": "not found"})
}

// claimList reads a list claim as API Gateway's JWT authorizer passes it:
// a JSON array arrives flattened to "[a b c]"; a V1 string claim is "a b c".
func claimList(v string) []string {
	return strings.Fields(strings.Trim(v, "[]"))
}

func reply(status int, body any) (events.APIGatewayV2HTTPResponse, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	return events.APIGatewayV2HTTPResponse{StatusCode: status, Headers: map[string]string{"Content-Type": "application/json"}, Body: string(b)}, nil
}
