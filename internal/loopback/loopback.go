// Package loopback tells loopback hosts from the rest: the one check behind
// the console's listen address and authz's plain-HTTP issuers.
package loopback

import "net"

// Host reports whether host (a name or an IP address, no port) is
// "localhost" or a loopback address.
func Host(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
