package trigger

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
)

// Event is a pre token generation event of any version, decoded tolerantly:
// Cognito's own events, AWS's published console test events and local
// emulators' events differ in small ways (see DecodeEvent). Only what
// pretoken reads is kept; clientMetadata in particular is never decoded,
// because it comes from the caller and must not grant anything.
//
// The shape follows the Cognito developer guide's "Pre token generation
// Lambda trigger" and aws-lambda-go's CognitoEventUserPoolsPreTokenGenV2_0.
type Event struct {
	Version       Version       `json:"version"`
	TriggerSource string        `json:"triggerSource"`
	Region        string        `json:"region"`
	UserPoolID    string        `json:"userPoolId"`
	UserName      string        `json:"userName,omitempty"`
	CallerContext CallerContext `json:"callerContext"`
	Request       Request       `json:"request"`
}

// CallerContext says which app client asked for the tokens.
type CallerContext struct {
	AWSSDKVersion string `json:"awsSdkVersion,omitempty"`
	ClientID      string `json:"clientId"`
}

// Request is the event's request part.
type Request struct {
	UserAttributes     Attributes         `json:"userAttributes,omitempty"`
	Scopes             []string           `json:"scopes,omitempty"`
	GroupConfiguration GroupConfiguration `json:"groupConfiguration"`
}

// GroupConfiguration is the user's groups and IAM roles. The same shape is
// the response's groupOverrideDetails, which replaces the user's groups.
type GroupConfiguration struct {
	GroupsToOverride   []string      `json:"groupsToOverride"`
	IAMRolesToOverride []string      `json:"iamRolesToOverride"`
	PreferredRole      PreferredRole `json:"preferredRole"`
}

// Version is the event's version field. Cognito sends "1", "2" or "3";
// local emulators send "0" for V1. A JSON number is accepted too.
type Version string

// UnmarshalJSON accepts a string or a number.
func (v *Version) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*v = Version(s)
		return nil
	}
	if bytes.Equal(b, []byte("null")) {
		*v = ""
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return errors.New("version must be a string or a number")
	}
	*v = Version(n.String())
	return nil
}

// PreferredRole is an IAM role ARN or empty. Cognito sends a string or null;
// AWS's console test events send an array, whose first entry is taken.
type PreferredRole string

// UnmarshalJSON accepts a string, null, or an array of strings.
func (p *PreferredRole) UnmarshalJSON(b []byte) error {
	switch {
	case bytes.Equal(b, []byte("null")):
		*p = ""
		return nil
	case len(b) > 0 && b[0] == '[':
		var list []string
		if err := json.Unmarshal(b, &list); err != nil {
			return errors.New("preferredRole must be a string or a list of strings")
		}
		*p = ""
		if len(list) > 0 {
			*p = PreferredRole(list[0])
		}
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return errors.New("preferredRole must be a string or a list of strings")
	}
	*p = PreferredRole(s)
	return nil
}

// MarshalJSON writes null for no role, as Cognito does.
func (p PreferredRole) MarshalJSON() ([]byte, error) {
	if p == "" {
		return []byte("null"), nil
	}
	return json.Marshal(string(p))
}

// Attributes are user attributes. Cognito sends strings; numbers and
// booleans from hand-written test events are kept as their JSON text, and
// nulls are dropped.
type Attributes map[string]string

// UnmarshalJSON accepts scalar values.
func (a *Attributes) UnmarshalJSON(b []byte) error {
	if bytes.Equal(b, []byte("null")) {
		*a = nil
		return nil
	}
	// Fast path: Cognito's own events hold strings only.
	var plain map[string]string
	if err := json.Unmarshal(b, &plain); err == nil {
		*a = plain
		return nil
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return errors.New("userAttributes must be an object")
	}
	out := make(Attributes, len(raw))
	for k, v := range raw {
		switch {
		case bytes.Equal(v, []byte("null")):
		case len(v) > 0 && v[0] == '"':
			var s string
			if err := json.Unmarshal(v, &s); err != nil {
				return err
			}
			out[k] = s
		case bytes.Equal(v, []byte("true")), bytes.Equal(v, []byte("false")):
			out[k] = string(v)
		default:
			if _, err := strconv.ParseFloat(string(v), 64); err != nil {
				return fmt.Errorf("userAttributes.%s must be a string", k)
			}
			out[k] = string(v)
		}
	}
	*a = out
	return nil
}

// Reply is the event with Cognito's answer in Response: what the Lambda returns.
type Reply struct {
	Event
	Response Response `json:"response"`
}

// Response holds the V1 or the V2/V3 answer; the other is omitted.
type Response struct {
	ClaimsOverrideDetails         *ClaimsOverrideDetails         `json:"claimsOverrideDetails,omitempty"`
	ClaimsAndScopeOverrideDetails *ClaimsAndScopeOverrideDetails `json:"claimsAndScopeOverrideDetails,omitempty"`
}

// ClaimsOverrideDetails is the V1_0 answer: ID token claims, strings only.
type ClaimsOverrideDetails struct {
	ClaimsToAddOrOverride map[string]string   `json:"claimsToAddOrOverride,omitempty"`
	ClaimsToSuppress      []string            `json:"claimsToSuppress,omitempty"`
	GroupOverrideDetails  *GroupConfiguration `json:"groupOverrideDetails,omitempty"`
}

// ClaimsAndScopeOverrideDetails is the V2_0/V3_0 answer.
type ClaimsAndScopeOverrideDetails struct {
	IDTokenGeneration     *TokenGeneration    `json:"idTokenGeneration,omitempty"`
	AccessTokenGeneration *TokenGeneration    `json:"accessTokenGeneration,omitempty"`
	GroupOverrideDetails  *GroupConfiguration `json:"groupOverrideDetails,omitempty"`
}

// TokenGeneration is the change to one token in a V2_0/V3_0 answer. Claim
// values are strings or lists of strings.
type TokenGeneration struct {
	ClaimsToAddOrOverride map[string]any `json:"claimsToAddOrOverride,omitempty"`
	ClaimsToSuppress      []string       `json:"claimsToSuppress,omitempty"`
	ScopesToAdd           []string       `json:"scopesToAdd,omitempty"`
	ScopesToSuppress      []string       `json:"scopesToSuppress,omitempty"`
}

// DecodeEvent decodes a raw event. It ignores unknown fields and the
// incoming response (which AWS's test events give as {} or []), and accepts
// the variations documented on Event's fields. Missing userName,
// userAttributes and groupConfiguration are fine. It fails for anything that
// is not a JSON object of the expected shape.
func DecodeEvent(payload []byte) (*Event, error) {
	var ev Event
	if err := json.Unmarshal(payload, &ev); err != nil {
		return nil, err
	}
	if ev.Version == "" {
		return nil, errors.New("event has no version")
	}
	return &ev, nil
}
