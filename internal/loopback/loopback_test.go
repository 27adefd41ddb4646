package loopback

import "testing"

func TestHost(t *testing.T) {
	for host, want := range map[string]bool{
		"localhost": true, "127.0.0.1": true, "127.8.9.10": true, "::1": true,
		"0.0.0.0": false, "": false, "10.0.0.1": false, "::": false,
		"localhost.example.com": false, "cognito-idp.us-east-1.amazonaws.com": false,
	} {
		if got := Host(host); got != want {
			t.Errorf("Host(%q) = %v, want %v", host, got, want)
		}
	}
}
