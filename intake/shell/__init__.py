"""The application shell: the app factory, settings, the CLI, the scheduler's jobs, logins
and the staff dashboard. It wires `voice`, `mail` and the core together, and may import
everything; nothing imports it.
"""
