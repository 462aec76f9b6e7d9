"""The log store add-on (`logs`): receives an app's stream through a drain, keeps it per plan
retention and volume, and offers search through an API and an SSO dashboard."""
