// The driver of the published OSB client that tests/osb/test_published_client.py runs against Berth's broker.
// scripts/build-osb-client.sh builds it into .cache/osb-client/; every module is pinned (go.sum).
module berth.invalid/osbdriver

go 1.19

require sigs.k8s.io/go-open-service-broker-client/v2 v2.0.0-20210928082444-d912fc53f8bd

require (
	github.com/go-logr/logr v0.1.0 // indirect
	k8s.io/klog/v2 v2.0.0 // indirect
)
