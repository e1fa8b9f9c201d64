"""The seed's first example, unchanged but for the import: module 100000 in
a clientless session opened for R41, and its return value.

Against the server of the README's "Run it" (or the one SESSIOND_ENDPOINT
names)::

    python clients/python/examples/clientless_session.py
"""

from sessiond import utilities

with utilities.ClientlessSession('R41') as session:
   session.open_module(module_id='100000')
   data = session.get_return_value(module_id='100000', timeout=5)

print(data)
