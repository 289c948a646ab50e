"""Write-side operations of campaigns, one module per sub-domain.

build (recipients and snapshots), render (the e-mail), send (the state machine), tracking (opens,
clicks, unsubscribes), results (conversions and uplift), offers (exports), schedule (lifecycle).
"""
