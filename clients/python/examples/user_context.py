"""The seed's second example: work in a ``UserContext('R41')`` block acts as
R41, and leaving the block restores exactly what was there before.

The block acts on the current session. Inside a module that is the run's
own session (see examples/modules/report_with_package.py); here, outside
one, it is a clientless session opened for SYSTEM and named to
``utilities.connect``. The seed creates a project in the block
(``utilities.create_pojo('Project', attributes={})``, ``save_pojo``): that
is the platform's persistence API, not sessiond's, so this block shows who
the work acts as, and runs module ``whoami`` (which answers with the user
it acts as) as R41.

Against the server of the README's "Run it" (or the one SESSIOND_ENDPOINT
names)::

    python clients/python/examples/user_context.py
"""

from sessiond import utilities

session_id = utilities.open_clientless_session('SYSTEM')
utilities.connect(session_id=session_id)
try:
    print('before the block:', utilities.get_user_context())
    with utilities.UserContext('R41'):
        print('in the block:', utilities.get_user_context())
        client = utilities.client()
        client.open_module(session_id, 'whoami')
        print('module whoami ran as:', client.get_return_value(session_id, 'whoami', timeout=5)['acting_user'])
    print('after the block:', utilities.get_user_context())
finally:
    utilities.close_clientless_session(session_id)
