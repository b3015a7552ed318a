"""Running on AWS the way the Custom Labels blog's pipeline did: S3 → SQS → Lambda → JSON.

``customlabels.aws.lambda_handler`` is the Lambda entry point (base install only, no torch);
:mod:`customlabels.aws.bundle` writes the container-image build context and the SAM template
that ``customlabels export MODEL --out DIR --lambda`` produces. The bundle module is not
imported here, so a cold start loads only what the handler needs.
"""

from customlabels.aws.handler import lambda_handler

__all__ = ["lambda_handler"]
