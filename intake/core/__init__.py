"""The intake core: what every channel shares.

Models and sessions, the contact log and a contact's life, the desk definition and its
store, the clock, errors, phone numbers, addresses, references, locks, demand counting and
the texts patients hear and read. `voice` and `mail` import it; it imports neither of them
nor the shell (`make lint` holds that with import-linter).
"""
