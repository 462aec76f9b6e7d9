"""App setups: an app.json applied to an app, by POST /app-setups or by an app's first deploy.

records = the app_setups table (a job queue) and its Platform API status; manifests = the one code
path that reads app.json from a build's source and applies it (env, buildpacks, formation, add-ons
through the broker's hooks) or undoes it; job = the job type (run by the worker) that finishes a
setup once its build did: the postdeploy script, or undoing what a failed deploy applied.
"""
