package main

import (
	"context"
	"net/http"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/google/go-cmp/cmp"
)

func request(route string, claims map[string]string) events.APIGatewayV2HTTPRequest {
	return events.APIGatewayV2HTTPRequest{RouteKey: route, RequestContext: events.APIGatewayV2HTTPRequestContext{
		Authorizer: &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{JWT: &events.APIGatewayV2HTTPRequestContextAuthorizerJWTDescription{
			Claims: claims, Scopes: []string{"orders-api/orders:read"}}}}}
}

func TestRoutes(t *testing.T) {
	tests := []struct {
		name   string
		req    events.APIGatewayV2HTTPRequest
		status int
		body   string
	}{
		{"scope-checked route", request("GET /orders", nil), http.StatusOK, `{"orders":[{"id":"o-1001","status":"shipped"}]}`},
		{"admin from an array claim", request("GET /admin", map[string]string{"app_roles": "[admin editor viewer]"}), http.StatusOK, `{"message":"welcome, admin"}`},
		{"admin from a V1 string claim", request("GET /admin", map[string]string{"app_roles": "admin viewer"}), http.StatusOK, `{"message":"welcome, admin"}`},
		{"not admin", request("GET /admin", map[string]string{"app_roles": "[editor viewer administrator]"}), http.StatusForbidden, `{"message":"the admin role is required"}`},
		{"no claims", events.APIGatewayV2HTTPRequest{RouteKey: "GET /admin"}, http.StatusForbidden, `{"message":"the admin role is required"}`},
		{"me", request("GET /me", map[string]string{"sub": "s1", "app_roles": "[viewer]", "app_permissions": "[orders:read]"}), http.StatusOK,
			`{"can_refund":false,"permissions":["orders:read"],"roles":["viewer"],"scopes":["orders-api/orders:read"],"sub":"s1"}`},
		{"me, a refunder", request("GET /me", map[string]string{"sub": "s2", "app_roles": "[refunder]", "app_permissions": "[orders:read orders:refund]"}), http.StatusOK,
			`{"can_refund":true,"permissions":["orders:read","orders:refund"],"roles":["refunder"],"scopes":["orders-api/orders:read"],"sub":"s2"}`},
		{"unknown route", request("POST /orders", nil), http.StatusNotFound, `{"message":"not found"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := handle(context.Background(), tt.req)
			if err != nil {
				t.Fatal(err)
			}
			if got.StatusCode != tt.status {
				t.Errorf("status %d, want %d", got.StatusCode, tt.status)
			}
			if diff := cmp.Diff(tt.body, got.Body); diff != "" {
				t.Errorf("body (-want +got):\n%s", diff)
			}
		})
	}
}
