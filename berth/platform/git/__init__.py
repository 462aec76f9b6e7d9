"""Source in over git: one bare repository per app, served over smart HTTP by the real
`git http-backend`, with hooks and settings Berth alone writes.

repositories = where an app's repository lives (by app id) and the settings every git process
gets; http_backend = the CGI run, streamed both ways; hooks = the pre-receive and post-receive
programs git runs (refs checked before git applies them); pushes = the one function a push to
main or master reaches (the builder replaces it).
"""
