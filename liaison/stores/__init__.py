"""The stores: each holds one kind of fact in the database, named for what it holds (the roster, the pathways and
patients, consents and objections, the external contacts, the document index, the mail threads and quarantine, the
trace, the Matrix sessions), and declares what a pathway's archive does to its tables (`RETENTION`, retention.py).
The bot's and the bridge's own stores (bot/store.py, bridge/store.py) follow the same shape."""
