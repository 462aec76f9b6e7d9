// Command osb-driver drives an Open Service Broker through the Kubernetes service catalog's client
// library, sigs.k8s.io/go-open-service-broker-client/v2 (the broker client of deployed platforms),
// one step per run, so that a test can check what the broker did between steps.
//
//	OSB_BROKER_USERNAME=… OSB_BROKER_PASSWORD=… osb-driver -url URL [-api-version 2.14] [-ca-file PEM] STEP [flags]
//
// Steps: catalog, provision, update, last-operation, get-instance, deprovision, bind, get-binding,
// unbind. It prints one JSON object on stdout: {"ok": true, "result": {...}} and exit 0, or
// {"ok": false, "error": {...}} and exit 1 when the library returned an error, classified with the
// library's own helpers (IsAsyncRequiredError, IsGoneError, ...). Usage errors exit 2.
// The credentials come from the environment, not argv, so they never show in a process list.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	osb "sigs.k8s.io/go-open-service-broker-client/v2"
)

// step is one broker call (with its polling, where the platform would poll).
type step func(client osb.Client, args []string) (interface{}, error)

var steps = map[string]step{
	"catalog":        catalog,
	"provision":      provision,
	"update":         update,
	"last-operation": lastOperation,
	"get-instance":   getInstance,
	"deprovision":    deprovision,
	"bind":           bind,
	"get-binding":    getBinding,
	"unbind":         unbind,
}

func main() {
	global := flag.NewFlagSet("osb-driver", flag.ContinueOnError)
	url := global.String("url", "", "the broker's base URL (the one with /v2/catalog under it)")
	version := global.String("api-version", "2.14", "X-Broker-API-Version the client speaks: 2.13 or 2.14")
	timeout := global.Int("timeout", 30, "seconds the client waits for one answer")
	caFile := global.String("ca-file", "", "PEM file of the CA that signed an https broker's certificate")
	if err := global.Parse(os.Args[1:]); err != nil || global.NArg() < 1 || *url == "" {
		usage("osb-driver -url URL [-api-version 2.13|2.14] [-ca-file PEM] STEP [flags]")
	}
	run, known := steps[global.Arg(0)]
	if !known {
		usage(fmt.Sprintf("unknown step %q", global.Arg(0)))
	}
	apiVersion, err := parseVersion(*version)
	if err != nil {
		usage(err.Error())
	}
	config := osb.DefaultClientConfiguration()
	config.Name = "berth"
	config.URL = *url
	config.APIVersion = apiVersion
	config.TimeoutSeconds = *timeout
	config.EnableAlphaFeatures = true // the library reads Retry-After only then
	if *caFile != "" {
		if config.CAData, err = os.ReadFile(*caFile); err != nil {
			usage(err.Error())
		}
	}
	config.AuthConfig = &osb.AuthConfig{BasicAuthConfig: &osb.BasicAuthConfig{
		Username: os.Getenv("OSB_BROKER_USERNAME"), Password: os.Getenv("OSB_BROKER_PASSWORD")}}
	client, err := osb.NewClient(config)
	if err != nil {
		usage(err.Error())
	}
	result, err := run(client, global.Args()[1:])
	if err != nil {
		emit(map[string]interface{}{"ok": false, "error": describe(err)}, 1)
	}
	emit(map[string]interface{}{"ok": true, "result": result}, 0)
}

func parseVersion(label string) (osb.APIVersion, error) {
	for _, version := range osb.APIVersions() {
		if version.HeaderValue() == label {
			return version, nil
		}
	}
	return osb.APIVersion{}, fmt.Errorf("the client library does not speak API version %q", label)
}

func usage(message string) {
	fmt.Fprintln(os.Stderr, "osb-driver:", message)
	os.Exit(2)
}

func emit(value interface{}, code int) {
	out, err := json.Marshal(value)
	if err != nil {
		fmt.Fprintln(os.Stderr, "osb-driver: cannot encode the result:", err)
		os.Exit(3)
	}
	fmt.Println(string(out))
	os.Exit(code)
}

// describe says what the library made of a failure, in its own terms.
func describe(err error) map[string]interface{} {
	described := map[string]interface{}{"message": err.Error(), "kind": kind(err)}
	if httpErr, ok := osb.IsHTTPError(err); ok {
		described["status"] = httpErr.StatusCode
		if httpErr.ErrorMessage != nil {
			described["error"] = *httpErr.ErrorMessage
		}
		if httpErr.Description != nil {
			described["description"] = *httpErr.Description
		}
		if httpErr.ResponseError != nil {
			described["response_error"] = httpErr.ResponseError.Error()
		}
	}
	return described
}

func kind(err error) string {
	switch {
	case osb.IsAsyncRequiredError(err):
		return "AsyncRequired"
	case osb.IsConcurrencyError(err):
		return "ConcurrencyError"
	case osb.IsAppGUIDRequiredError(err):
		return "RequiresApp"
	case osb.IsGoneError(err):
		return "Gone"
	case osb.IsConflictError(err):
		return "Conflict"
	case osb.IsAsyncBindingOperationsNotAllowedError(err):
		return "AsyncBindingOperationsNotAllowed"
	}
	switch err.(type) {
	case osb.GetInstanceNotAllowedError, osb.GetBindingNotAllowedError, osb.OperationNotAllowedError:
		return "NotAllowedAtThisVersion"
	}
	if _, ok := osb.IsHTTPError(err); ok {
		return "HTTPStatusCodeError"
	}
	return "ClientError" // transport, or a body the library could not decode
}

// flags parses a step's own flags; required names must be given.
func flags(name string, args []string, define func(*flag.FlagSet), required ...string) {
	set := flag.NewFlagSet(name, flag.ContinueOnError)
	define(set)
	if err := set.Parse(args); err != nil {
		usage(err.Error())
	}
	seen := map[string]bool{}
	set.Visit(func(f *flag.Flag) { seen[f.Name] = true })
	for _, want := range required {
		if !seen[want] {
			usage(fmt.Sprintf("%s: -%s is required", name, want))
		}
	}
}

// target is what every instance step names.
type target struct {
	instance, service, plan string
}

func (t *target) define(set *flag.FlagSet) {
	set.StringVar(&t.instance, "instance", "", "the platform's instance id")
	set.StringVar(&t.service, "service", "", "the service (offering) id from the catalog")
	set.StringVar(&t.plan, "plan", "", "the plan id from the catalog")
}

// polling is how a step waits for an asynchronous operation, as a platform's controller does.
type polling struct {
	wait     bool
	interval time.Duration
	deadline time.Duration
}

func (p *polling) define(set *flag.FlagSet) {
	set.BoolVar(&p.wait, "wait", true, "poll last_operation until the operation ends")
	set.DurationVar(&p.interval, "poll-interval", time.Second, "delay between polls when the broker sends no Retry-After")
	set.DurationVar(&p.deadline, "poll-timeout", 2*time.Minute, "give up polling after this long")
}

// poll calls last_operation until succeeded or failed, sleeping for the Retry-After the library read.
// A 410 while polling a delete is the end of the delete (gone = success), as the spec says.
func (p *polling) poll(once func() (*osb.LastOperationResponse, error), deleting bool) (map[string]interface{}, error) {
	var polls []map[string]interface{}
	deadline := time.Now().Add(p.deadline)
	for {
		answer, err := once()
		if err != nil {
			if deleting && osb.IsGoneError(err) {
				polls = append(polls, map[string]interface{}{"gone": true})
				return map[string]interface{}{"state": string(osb.StateSucceeded), "polls": polls}, nil
			}
			return nil, err
		}
		seen := map[string]interface{}{"state": string(answer.State)}
		if answer.Description != nil {
			seen["description"] = *answer.Description
		}
		delay := p.interval
		if answer.PollDelay != nil {
			seen["retry_after_seconds"] = answer.PollDelay.Seconds()
			delay = *answer.PollDelay
		}
		polls = append(polls, seen)
		switch answer.State {
		case osb.StateSucceeded, osb.StateFailed:
			return map[string]interface{}{"state": string(answer.State), "polls": polls}, nil
		case osb.StateInProgress:
		default:
			return nil, fmt.Errorf("last_operation answered state %q, not one of the spec's three", answer.State)
		}
		if time.Now().Add(delay).After(deadline) {
			return nil, fmt.Errorf("still %q after polling for %s", answer.State, p.deadline)
		}
		time.Sleep(delay)
	}
}

// finish adds to an asynchronous answer's result how its operation ended, polled as a platform polls.
func (p *polling) finish(result map[string]interface{}, async bool, once func() (*osb.LastOperationResponse, error),
	deleting bool) (map[string]interface{}, error) {
	if !async || !p.wait {
		return result, nil
	}
	polled, err := p.poll(once, deleting)
	if err != nil {
		return nil, err
	}
	result["last_operation"] = polled
	return result, nil
}

// instancePoller polls an instance's operation; after a plan change t.plan is the plan before it,
// which is what the spec says a platform sends.
func instancePoller(client osb.Client, t target, key *osb.OperationKey) func() (*osb.LastOperationResponse, error) {
	return func() (*osb.LastOperationResponse, error) {
		return client.PollLastOperation(&osb.LastOperationRequest{
			InstanceID: t.instance, ServiceID: &t.service, PlanID: &t.plan, OperationKey: key})
	}
}

func bindingPoller(client osb.Client, b bindingTarget, key *osb.OperationKey) func() (*osb.LastOperationResponse, error) {
	return func() (*osb.LastOperationResponse, error) {
		return client.PollBindingLastOperation(&osb.BindingLastOperationRequest{
			InstanceID: b.instance, BindingID: b.binding, ServiceID: &b.service, PlanID: &b.plan, OperationKey: key})
	}
}

func operationKey(key *osb.OperationKey) interface{} {
	if key == nil {
		return nil
	}
	return string(*key)
}

func catalog(client osb.Client, args []string) (interface{}, error) {
	flags("catalog", args, func(*flag.FlagSet) {})
	answer, err := client.GetCatalog()
	if err != nil {
		return nil, err
	}
	return answer, nil
}

func provision(client osb.Client, args []string) (interface{}, error) {
	var t target
	var p polling
	var async bool
	var parameters, context string
	flags("provision", args, func(set *flag.FlagSet) {
		t.define(set)
		p.define(set)
		set.BoolVar(&async, "accepts-incomplete", true, "send accepts_incomplete=true")
		set.StringVar(&parameters, "parameters", "", "JSON object of parameters")
		set.StringVar(&context, "context", `{"platform":"kubernetes","namespace":"default","clusterid":"berth-tests"}`, "JSON object of context")
	}, "instance", "service", "plan")
	request := &osb.ProvisionRequest{
		InstanceID: t.instance, ServiceID: t.service, PlanID: t.plan, AcceptsIncomplete: async,
		OrganizationGUID: "berth-tests-org", SpaceGUID: "berth-tests-space",
		OriginatingIdentity: &osb.OriginatingIdentity{Platform: "kubernetes", Value: `{"username":"osb-driver"}`},
	}
	if err := decodeObject(parameters, &request.Parameters); err != nil {
		usage("provision: -parameters: " + err.Error())
	}
	if err := decodeObject(context, &request.Context); err != nil {
		usage("provision: -context: " + err.Error())
	}
	answer, err := client.ProvisionInstance(request)
	if err != nil {
		return nil, err
	}
	result := map[string]interface{}{"async": answer.Async, "operation": operationKey(answer.OperationKey)}
	if answer.DashboardURL != nil {
		result["dashboard_url"] = *answer.DashboardURL
	}
	return p.finish(result, answer.Async, instancePoller(client, t, answer.OperationKey), false)
}

func update(client osb.Client, args []string) (interface{}, error) {
	var t target
	var p polling
	var async bool
	var newPlan, parameters string
	flags("update", args, func(set *flag.FlagSet) {
		t.define(set)
		p.define(set)
		set.BoolVar(&async, "accepts-incomplete", true, "send accepts_incomplete=true")
		set.StringVar(&newPlan, "new-plan", "", "the plan id to change to (none: the plan stays)")
		set.StringVar(&parameters, "parameters", "", "JSON object of parameters")
	}, "instance", "service", "plan")
	request := &osb.UpdateInstanceRequest{
		InstanceID: t.instance, ServiceID: t.service, AcceptsIncomplete: async,
		PreviousValues: &osb.PreviousValues{PlanID: t.plan},
	}
	if newPlan != "" {
		request.PlanID = &newPlan
	}
	if err := decodeObject(parameters, &request.Parameters); err != nil {
		usage("update: -parameters: " + err.Error())
	}
	answer, err := client.UpdateInstance(request)
	if err != nil {
		return nil, err
	}
	result := map[string]interface{}{"async": answer.Async, "operation": operationKey(answer.OperationKey)}
	return p.finish(result, answer.Async, instancePoller(client, t, answer.OperationKey), false)
}

func lastOperation(client osb.Client, args []string) (interface{}, error) {
	var t target
	var operation string
	flags("last-operation", args, func(set *flag.FlagSet) {
		t.define(set)
		set.StringVar(&operation, "operation", "", "the operation key the broker gave")
	}, "instance")
	request := &osb.LastOperationRequest{InstanceID: t.instance}
	if t.service != "" {
		request.ServiceID = &t.service
	}
	if t.plan != "" {
		request.PlanID = &t.plan
	}
	if operation != "" {
		key := osb.OperationKey(operation)
		request.OperationKey = &key
	}
	return client.PollLastOperation(request)
}

func getInstance(client osb.Client, args []string) (interface{}, error) {
	var t target
	flags("get-instance", args, t.define, "instance")
	return client.GetInstance(&osb.GetInstanceRequest{InstanceID: t.instance})
}

func deprovision(client osb.Client, args []string) (interface{}, error) {
	var t target
	var p polling
	var async bool
	flags("deprovision", args, func(set *flag.FlagSet) {
		t.define(set)
		p.define(set)
		set.BoolVar(&async, "accepts-incomplete", true, "send accepts_incomplete=true")
	}, "instance", "service", "plan")
	answer, err := client.DeprovisionInstance(&osb.DeprovisionRequest{
		InstanceID: t.instance, ServiceID: t.service, PlanID: t.plan, AcceptsIncomplete: async})
	if err != nil {
		return nil, err
	}
	result := map[string]interface{}{"async": answer.Async, "operation": operationKey(answer.OperationKey)}
	return p.finish(result, answer.Async, instancePoller(client, t, answer.OperationKey), true)
}

// bindingTarget is what every binding step names.
type bindingTarget struct {
	target
	binding string
}

func (b *bindingTarget) define(set *flag.FlagSet) {
	b.target.define(set)
	set.StringVar(&b.binding, "binding", "", "the platform's binding id")
}

func bind(client osb.Client, args []string) (interface{}, error) {
	var b bindingTarget
	var p polling
	var async bool
	var appGUID, parameters string
	flags("bind", args, func(set *flag.FlagSet) {
		b.define(set)
		p.define(set)
		// Deployed platforms bind without it; a broker must then answer synchronously.
		set.BoolVar(&async, "accepts-incomplete", false, "send accepts_incomplete=true (2.14)")
		set.StringVar(&appGUID, "app-guid", "", "bind_resource.app_guid")
		set.StringVar(&parameters, "parameters", "", "JSON object of parameters")
	}, "instance", "binding", "service", "plan")
	request := &osb.BindRequest{
		BindingID: b.binding, InstanceID: b.instance, ServiceID: b.service, PlanID: b.plan,
		AcceptsIncomplete: async,
		Context:           map[string]interface{}{"platform": "kubernetes", "namespace": "default", "clusterid": "berth-tests"},
	}
	if appGUID != "" {
		request.BindResource = &osb.BindResource{AppGUID: &appGUID}
	}
	if err := decodeObject(parameters, &request.Parameters); err != nil {
		usage("bind: -parameters: " + err.Error())
	}
	answer, err := client.Bind(request)
	if err != nil {
		return nil, err
	}
	result := map[string]interface{}{"async": answer.Async, "operation": operationKey(answer.OperationKey),
		"credentials": answer.Credentials}
	if answer.SyslogDrainURL != nil {
		result["syslog_drain_url"] = *answer.SyslogDrainURL
	}
	return p.finish(result, answer.Async, bindingPoller(client, b, answer.OperationKey), false)
}

func getBinding(client osb.Client, args []string) (interface{}, error) {
	var b bindingTarget
	flags("get-binding", args, b.define, "instance", "binding")
	return client.GetBinding(&osb.GetBindingRequest{InstanceID: b.instance, BindingID: b.binding})
}

func unbind(client osb.Client, args []string) (interface{}, error) {
	var b bindingTarget
	var p polling
	var async bool
	flags("unbind", args, func(set *flag.FlagSet) {
		b.define(set)
		p.define(set)
		set.BoolVar(&async, "accepts-incomplete", false, "send accepts_incomplete=true (2.14)")
	}, "instance", "binding", "service", "plan")
	answer, err := client.Unbind(&osb.UnbindRequest{InstanceID: b.instance, BindingID: b.binding,
		ServiceID: b.service, PlanID: b.plan, AcceptsIncomplete: async})
	if err != nil {
		return nil, err
	}
	result := map[string]interface{}{"async": answer.Async, "operation": operationKey(answer.OperationKey)}
	return p.finish(result, answer.Async, bindingPoller(client, b, answer.OperationKey), true)
}

// decodeObject reads a JSON object flag; empty leaves the target nil (the field is not sent).
func decodeObject(text string, into *map[string]interface{}) error {
	if text == "" {
		return nil
	}
	if err := json.Unmarshal([]byte(text), into); err != nil {
		return err
	}
	if *into == nil {
		return errors.New("want a JSON object")
	}
	return nil
}
