"""Development tools of the accrual job: the operator CLI, the embedded local stack and the partner simulator.

Not shipped in the Lambda layer: installed into the development environment by `make`.
"""
