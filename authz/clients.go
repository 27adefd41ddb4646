package authz

import (
	"github.com/pretoken/pretoken/permissions"
)

// claimsFor is where the tokens of client keep permissions, roles and the
// tenant: its own names (Config.ClientClaims) or the shared ones.
func (v *Verifier) claimsFor(client string) Claims {
	if c, ok := v.cfg.ClientClaims[client]; ok {
		return c
	}
	return v.cfg.Claims
}

// ClaimsForClients reads the claim names and scope prefix of each client
// from its profile in the policy (or the default profile), for
// Config.ClientClaims: one Verifier then serves clients whose tokens name
// their claims differently, each read as the trigger wrote it.
func ClaimsForClients(p *permissions.Policy, clientIDs []string) (map[string]Claims, error) {
	out := make(map[string]Claims, len(clientIDs))
	for _, id := range clientIDs {
		c, err := ClaimsFromPolicy(p, id)
		if err != nil {
			return nil, err
		}
		out[id] = c
	}
	return out, nil
}
