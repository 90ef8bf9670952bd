"""AWS Lambda handlers of the upload path (deployed by infra/uploads.yaml from the same lib
artifact as the Glue jobs): ``upload_api.handler`` behind the HTTP API, ``validator.handler``
on the upload queue."""
