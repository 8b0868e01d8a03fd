"""Segment: spec events (track, identify) received on `POST /webhooks/<source_id>`."""

from connector.contract import Plugin
from plugins.segment.auth import SegmentSignature, SegmentWriteKey
from plugins.segment.source import SegmentSource

plugin = Plugin(name="segment", sources=[SegmentSource()], verifiers=[SegmentSignature(), SegmentWriteKey()])
