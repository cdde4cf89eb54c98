"""Key bundles: policy, planner, signing request (KSR) and response (SKR), checks, formats."""
