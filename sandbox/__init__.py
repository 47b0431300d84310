"""Sandbox tooling: a real FHIR R4 server, example patients and an EHR simulator.

Nothing here is imported by the CDS service itself; it exists so that a user
(``myositis-cds sandbox`` / ``demo`` / ``load`` / ``fire``) and the
integration tests can exercise the service against a real FHIR server the way
an EHR would, without Docker or the internet.

    fhir_server   install and run the embedded ``sekmet-fhir`` server
    patients      example patients as FHIR R4 transaction Bundles (package data)
    loader        POST transaction Bundles to any FHIR server
    ehr           build / send patient-view and order-select / order-sign requests (the EHR simulator)
    terminal      print cards and their markdown for a terminal
    appserver     serve the Flask app on a loopback port in a thread
    signals       SIGINT / SIGTERM / SIGHUP stop the long-running sandbox cleanly
    commands      the click commands (``register(group)``)
"""
