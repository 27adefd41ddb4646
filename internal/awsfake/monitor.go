package awsfake

import (
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/aws/smithy-go/encoding/cbor"
)

// Alarm is a CloudWatch metric alarm.
type Alarm struct {
	Name, Namespace, MetricName string
	// Dimensions as name -> value.
	Dimensions map[string]string
}

// AddAlarm adds a metric alarm.
func (f *Fake) AddAlarm(a Alarm) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.alarms = append(f.alarms, a)
}

// serveIAM answers SimulatePrincipalPolicy (AWS query protocol, XML).
func (f *Fake) serveIAM(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	form, _ := url.ParseQuery(string(body))
	op := form.Get("Action")
	in := map[string]any{}
	for k := range form {
		in[k] = form.Get(k)
	}
	var actions, resources []string
	for i := 1; form.Has(fmt.Sprintf("ActionNames.member.%d", i)); i++ {
		actions = append(actions, form.Get(fmt.Sprintf("ActionNames.member.%d", i)))
	}
	for i := 1; form.Has(fmt.Sprintf("ResourceArns.member.%d", i)); i++ {
		resources = append(resources, form.Get(fmt.Sprintf("ResourceArns.member.%d", i)))
	}
	in["ActionNames"], in["ResourceArns"] = actions, resources
	action := "iam:" + op
	f.mu.Lock()
	f.record(r, action, in)
	allowed, known := f.roles[form.Get("PolicySourceArn")]
	f.mu.Unlock()
	defer f.hook(action)
	w.Header().Set("Content-Type", "text/xml")
	fail := func(status int, code, msg string) {
		w.WriteHeader(status)
		fmt.Fprintf(w, `<ErrorResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><Error><Type>Sender</Type><Code>%s</Code><Message>%s</Message></Error><RequestId>fake</RequestId></ErrorResponse>`, code, msg)
	}
	switch {
	case op != "SimulatePrincipalPolicy":
		fail(http.StatusBadRequest, "InvalidAction", "the fake does not serve "+op)
		return
	case !known:
		fail(http.StatusNotFound, "NoSuchEntity", "The principal "+form.Get("PolicySourceArn")+" does not exist.")
		return
	case len(actions) == 0:
		fail(http.StatusBadRequest, "ValidationError", "ActionNames is required")
		return
	}
	if len(resources) == 0 {
		resources = []string{"*"}
	}
	var sb strings.Builder
	sb.WriteString(`<SimulatePrincipalPolicyResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><SimulatePrincipalPolicyResult><IsTruncated>false</IsTruncated><EvaluationResults>`)
	for _, a := range actions {
		for _, res := range resources {
			decision := "implicitDeny"
			if slices.Contains(allowed, a) {
				decision = "allowed"
			}
			sb.WriteString("<member><EvalActionName>")
			xml.EscapeText(&sb, []byte(a))
			sb.WriteString("</EvalActionName><EvalResourceName>")
			xml.EscapeText(&sb, []byte(res))
			sb.WriteString("</EvalResourceName><EvalDecision>" + decision + "</EvalDecision></member>")
		}
	}
	sb.WriteString(`</EvaluationResults></SimulatePrincipalPolicyResult><ResponseMetadata><RequestId>fake</RequestId></ResponseMetadata></SimulatePrincipalPolicyResponse>`)
	io.WriteString(w, sb.String())
}

// serveCloudWatch answers DescribeAlarms in the Smithy RPC v2 CBOR protocol
// that the SDK's CloudWatch client speaks.
func (f *Fake) serveCloudWatch(w http.ResponseWriter, r *http.Request) {
	op := r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:]
	body, _ := io.ReadAll(r.Body)
	in := map[string]any{}
	if v, err := cbor.Decode(body); err == nil {
		if m, ok := v.(cbor.Map); ok {
			for k, x := range m {
				in[k] = fmt.Sprint(x)
			}
		}
	}
	action := "cloudwatch:" + op
	f.mu.Lock()
	f.record(r, action, in)
	alarms := slices.Clone(f.alarms)
	f.mu.Unlock()
	defer f.hook(action)
	w.Header().Set("Smithy-Protocol", "rpc-v2-cbor")
	w.Header().Set("Content-Type", "application/cbor")
	if op != "DescribeAlarms" {
		w.WriteHeader(http.StatusBadRequest)
		w.Write(cbor.Encode(cbor.Map{"__type": cbor.String("InvalidAction"), "message": cbor.String("the fake does not serve " + op)}))
		return
	}
	list := cbor.List{}
	for _, a := range alarms {
		dims := cbor.List{}
		for k, v := range a.Dimensions {
			dims = append(dims, cbor.Map{"Name": cbor.String(k), "Value": cbor.String(v)})
		}
		list = append(list, cbor.Map{"AlarmName": cbor.String(a.Name), "Namespace": cbor.String(a.Namespace),
			"MetricName": cbor.String(a.MetricName), "Dimensions": dims})
	}
	w.Write(cbor.Encode(cbor.Map{"MetricAlarms": list, "CompositeAlarms": cbor.List{}}))
}
