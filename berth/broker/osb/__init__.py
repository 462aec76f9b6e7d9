"""The Open Service Broker API v2.17 (`specs/osbapi.md`) over Berth's catalogue: a second front
door onto the same add-ons, operations and worker. `api` is the blueprint (`/osb/v2/...`)."""
