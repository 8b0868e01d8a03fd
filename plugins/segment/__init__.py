"""Segment: spec events (track, identify) received on `POST /webhooks/<source_id>`, and Segment's
HTTP tracking API as a destination (`POST /v1/batch`, SEGMENT_WRITE_KEY keys)."""

from connector.plugin_api import Plugin
from plugins.segment.auth import SegmentSignature, SegmentWriteKey
from plugins.segment.destination import SegmentDestination
from plugins.segment.keys import SegmentWriteKeyAlgorithm
from plugins.segment.source import SegmentSource

plugin = Plugin(
    name="segment",
    sources=[SegmentSource()],
    verifiers=[SegmentSignature(), SegmentWriteKey()],
    destinations=[SegmentDestination()],
    key_algorithms=[SegmentWriteKeyAlgorithm()],
)
