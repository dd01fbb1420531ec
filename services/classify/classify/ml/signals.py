"""Urgency signals (security, data loss, outage, payment failure, legal threat), severity, and the
anger / frustration / urgency flags of the wording.

Patterns are written for customer-feedback wording (our own lists, no third-party lexicon) in English,
German, Spanish, French, Portuguese, Chinese and Japanese. The
category of the message adds its signal too: a message classified as `security/...` is a security
matter even when no keyword fires. Severity is what ticketing turns into priority:
critical (security, data loss, outage, legal threat), high (payment failure; or anger with urgency),
medium (any other negative message), low (everything else).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

SEVERITIES = ("low", "medium", "high", "critical")

# One alternation per signal and language (en, de, es, fr, pt, zh, ja; it and nl where words are obvious),
# matched against the lower-cased text. Han and kana have no word boundaries, so those patterns are plain
# substrings. A bare number is never a signal: "500" is an outage only beside an error word ("error 500",
# "HTTP 503", "500 internal server error"), since "I paid 500 euros" is a price.
_SIGNAL_PATTERNS: dict[str, list[str]] = {
    "security": [
        r"hack(ed|er|ers|ing)?|breach(ed)?|unauthori[sz]ed|compromised|phishing|scam(med)?|fraud\w*"
        r"|stolen|identity theft|someone (else )?(logged|signed) in|(logged|signed) in from"
        r"|not me who|didn'?t (make|authori[sz]e)|suspicious (login|activity|transaction)"
        r"|leak(ed)?|exposed|vulnerab\w+|password (was )?changed",
        r"gehackt|betrug\w*|betrüger|unbefugt\w*|gestohlen|datenleck|phishing|nicht autorisiert",  # de
        r"hacke(ado|aron)|fraude|estafa|robad[oa]|robaron|no autorizad[oa]|suplantaci[oó]n",  # es
        r"piraté|fraude|arnaque|escroquerie|volée?s?\b|non autorisée?|usurpation",  # fr
        r"hackead[oa]|invadid[oa]|fraude|golpe|roubad[oa]|roubaram|não autorizad[oa]|clonad[oa]",  # pt
        r"被盗|盗刷|盗用|被黑|黑客|诈骗|骗子|异常登录|未经授权|泄露|盗号|被人登录|冒用",  # zh
        r"不正アクセス|乗っ取|不正利用|詐欺|盗まれ|漏洩|なりすまし|身に覚えのない",  # ja
    ],
    "data_loss": [
        r"(lost|lose|losing|deleted|disappeared|gone|wiped|erased|missing) (all )?(my |our |the )?"
        r"(data|files?|photos?|documents?|history|messages?|contacts|notes|records|work|progress)"
        r"|data (loss|is gone|was lost|vanished)|(files?|photos?|data|everything) (is |are |was |were )?"
        r"(gone|deleted|wiped|lost)|corrupt(ed|ion)",
        r"(daten|dateien|fotos|bilder|nachrichten|kontakte|dokumente)( sind| wurden)? (alle )?(weg|gelöscht|verloren"
        r"|verschwunden)|datenverlust",  # de
        r"(perd[ií]|borr[oó]|se borraron|desaparecieron) (todos )?(mis |los )?(datos|archivos|fotos|mensajes"
        r"|contactos|documentos)|pérdida de datos",  # es
        r"(perdu|supprimé|effacé) (toutes |tous )?(mes |les )?(données|fichiers|photos|messages|contacts)"
        r"|(données|photos|fichiers) (ont )?(disparu|été supprimée?s)|perte de données",  # fr
        r"(perdi|apagou|apagaram|sumiram) (tod[oa]s )?(os |as )?(meus |minhas )?(dados|arquivos|fotos|mensagens"
        r"|contatos)|perda de dados",  # pt
        r"数据丢失|数据没了|数据不见|丢失了?(所有|全部)?的?(数据|文件|照片|记录)|(照片|文件|记录|聊天记录|数据)(全|都)?(没了|丢了|不见了|消失)",
        r"データが(全部|すべて)?(消え|消失|なくな)|データ消失|(写真|ファイル|履歴)が(全部|すべて)?(消え|なくな)",  # ja
    ],
    "outage": [
        r"\b(is|are|was|were|went|goes|been) down\b|outage|not loading|won'?t load"
        r"|can'?t (log ?in|sign in|access)"
        r"|cannot (log ?in|sign in|access)|unable to (log ?in|sign in|access|connect)"
        r"|(error|http|status|code|fehler|erreur|erro)[ :#]*50[0234]\b|\b50[0234] (error|internal|bad gateway"
        r"|service unavailable|gateway)"
        r"|server error|service unavailable|times? out|timing out|nothing works|completely broken"
        r"|(app|site|website|service|system|platform) (is )?(not working|broken|crash\w*)",
        r"ausgefallen|ausfall|störung|nicht erreichbar|kann mich nicht (mehr )?(anmelden|einloggen)|serverfehler"
        r"|(app|seite|webseite|website|dienst) (geht|funktioniert) nicht|lädt nicht",  # de
        r"no funciona (nada|la app|la aplicación|la página|la web)|caída del (servicio|sistema)|no puedo (iniciar"
        r" sesión|entrar|acceder)|no carga|error del servidor|servicio caído",  # es
        r"en panne|ne fonctionne plus|ne marche plus|(je n'arrive pas|impossible) (à|de) (me connecter|accéder)"
        r"|ne charge pas|erreur (du )?serveur|service indisponible",  # fr
        r"fora do ar|não funciona mais|não consigo (entrar|acessar|fazer login|logar)|(site|app|aplicativo|sistema)"
        r" (caiu|está fora)|não carrega|erro (no|do) servidor",  # pt
        r"无法登录|登不上|登录不了|打不开|宕机|服务器错误|系统崩溃|用不了|无法访问|服务中断|连不上"
        r"|(错误|报错)(代码|码)?[:： ]*50[0234](?!\d)|(?<!\d)50[0234] ?(错误|报错)",  # zh: "报500错误", not "付了500元"
        r"ログインできな|つながらな|繋がらな|障害が|サーバーエラー|落ちて(い|る)|開けな|アクセスできな"
        r"|(?<!\d)50[0234] ?エラー|エラー(コード)?[:： ]*50[0234](?!\d)",  # ja: "503エラー", not "500円"
    ],
    "payment_failure": [
        r"(payment|card|transaction|transfer|top.?up|checkout) (was |is |keeps |got )?"
        r"(declined|failed|rejected|refused|failing|not going through|bounced|did ?n[o']t go through)"
        r"|charged (me )?(twice|two times|double|multiple times|again)|double.?charged"
        r"|(declined|rejected|refused) (my )?(card|payment)|can'?t (pay|check ?out)"
        r"|payment (error|issue|problem)",
        r"(zahlung|karte|überweisung|abbuchung)( wurde| ist)? (abgelehnt|fehlgeschlagen)|zweimal (belastet|abgebucht"
        r"|berechnet)|doppelt (belastet|abgebucht|berechnet)|kann nicht (bezahlen|zahlen)",  # de
        r"(pago|tarjeta|transferencia) (fue )?(rechazad[oa]|fallid[oa])|rechaza(ron|n) (mi )?(tarjeta|pago)"
        r"|cobr(aron|ado) dos veces|cobro (duplicado|doble)|no puedo pagar",  # es
        r"(paiement|carte|virement) (a été )?(refusée?|échouée?|rejetée?)|(débitée?|prélevée?|facturée?) deux fois"
        r"|double (débit|prélèvement)|impossible de payer",  # fr
        r"(pagamento|cartão|transferência) (foi )?(recusad[oa]|negad[oa]|falhou)|cobrad[oa] duas vezes"
        r"|cobra(ram|nça) (duas vezes|duplicada|em dobro)|não consigo pagar",  # pt
        r"重复扣款|扣了两次|被扣两次|两次扣款|支付失败|付款失败|扣款失败|付不了款|无法支付|刷卡失败|支付不了",  # zh
        r"二重(に)?(引き落と|請求|課金)|二回請求|決済(が|に)?(失敗|でき)|支払いが(でき|通ら|失敗)|カードが(使えな|拒否)",
    ],
    "legal_threat": [
        r"lawyer|attorney|solicitor|\bsue\b|suing|lawsuit|legal action|take (you|this) to court"
        r"|\bcourt\b|small claims|ombudsman|regulator|consumer protection|trading standards"
        r"|report(ing)? (you|this) to (the )?(fca|ftc|cfpb|bbb|authorit\w+|police)|chargeback",
        r"anwalt|verklagen|klage\b|vor gericht|gerichtlich|rechtliche schritte|verbraucherzentrale|bafin",  # de
        r"abogad[oa]|demandar(é|les)?|denuncia(ré|r)?|tribunal|acciones legales|vía judicial",  # es
        r"avocat|porter plainte|poursuivre en justice|poursuites|tribunal|action en justice|médiateur",  # fr
        r"advogad[oa]|processar|processo judicial|procon|tribunal|justiça|ação judicial",  # pt
        r"律师|起诉|告你们|法院|消协|消费者协会|法律途径|法律手段|报警|投诉到|12315",  # zh
        r"弁護士|訴え|訴訟|裁判|消費者センター|法的(措置|手段)|警察",  # ja
        r"avvocato|denuncia|tribunale|advocaat|rechter|aanklagen",  # it, nl
    ],
}
_CRITICAL = {"security", "data_loss", "outage", "legal_threat"}
_CATEGORY_SIGNALS = {
    "security": "security", "data_loss": "data_loss", "outage": "outage", "payment_failure": "payment_failure",
    "account_compromise": "security", "fraud": "security", "legal": "legal_threat",
}

_EMOTION_PATTERNS: dict[str, list[str]] = {
    "anger": [
        r"furious|angry|livid|outraged|outrageous|disgust\w*|unacceptable|ridiculous|pathetic|disgrace\w*"
        r"|rip.?off|scam|hate|worst|terrible service|fed up|sick (and tired|of)|how dare|never again"
        r"|shame on|useless|incompetent|\bwtf\b",
        r"unverschämt|frechheit|wütend|skandal\w*|katastroph\w*|abzocke|nie wieder|inakzeptabel|lächerlich",  # de
        r"indignante|vergüenza|furios[oa]|inaceptable|pésim[oa]|una mierda|harto|ridícul[oa]|nunca más",  # es
        r"inadmissible|scandaleu\w+|honteu\w+|furieu\w+|inacceptable|lamentable|ridicule|plus jamais",  # fr
        r"absurdo|vergonha|furios[oa]|inaceitável|péssim[oa]|palhaçada|ridícul[oa]|nunca mais|revoltad[oa]",  # pt
        r"太差|垃圾|气死|生气|气人|火大|愤怒|无法接受|坑人|太过分|恶心|什么破|骗人",  # zh
        r"ふざけ|最悪|許せな|腹が立|頭にくる|怒り|ひどすぎ|二度と使わな|ムカつ|むかつ",  # ja
    ],
    "frustration": [
        r"yet again|once again|(happened|failed|broken|down|declined|crashed|wrong|problem) again"
        r"|(second|third|fourth|fifth|\d+(st|nd|rd|th)) time|still (not|no|waiting|haven'?t|hasn'?t"
        r"|doesn'?t|isn'?t|broken)|keeps? (happening|failing|crashing|asking)|every time|for (days|weeks"
        r"|months)|no (one|body) (answers|responds|replies|helps)|no (answer|response|reply)"
        r"|waiting (for|since)|frustrat\w+|annoy\w+|tired of|already (tried|told|asked|contacted)"
        r"|(nobody|no one) (has )?(answered|responded|replied|helped)|gave up|give up",
        r"schon wieder|immer noch (nicht|kein)|zum (zweiten|dritten|vierten) mal|seit (tagen|wochen|monaten)"
        r"|keine antwort|niemand antwortet|warte seit|jedes mal",  # de
        r"otra vez|de nuevo|todavía no|sigo esperando|nadie (me )?responde|sin respuesta|por (segunda|tercera) vez"
        r"|desde hace (días|semanas)|cada vez que",  # es
        r"encore une fois|toujours pas|personne ne répond|aucune réponse|j'attends depuis|(deuxième|troisième) fois"
        r"|depuis des (jours|semaines)|à chaque fois",  # fr
        r"de novo|outra vez|ainda não|ninguém (me )?responde|sem resposta|esperando há|(segunda|terceira) vez"
        r"|há (dias|semanas)|toda vez",  # pt
        r"又(一次|出|坏|失败|崩|被|扣|是这样)|还是没|一直没|没人(回复|理|管)|没有(回复|回应)|等了(好几|很久|一)|第[二三四五]次|好几天",
        r"また(同じ|失敗|エラー|起き|です)|まだ(届|返|来|解決|直)|何度も|返事がな|返信がな|ずっと待|いつまで待",  # ja
    ],
    "urgency": [
        r"urgent\w*|asap|a\.s\.a\.p|immediately|right now|right away|emergency|as soon as possible"
        r"|critical|need (this|it|help) (now|today)|time.sensitive|can'?t wait|deadline|today!",
        r"dringend|sofort|so schnell wie möglich|umgehend|notfall",  # de
        r"urgente|urgencia|inmediatamente|lo antes posible|cuanto antes|ya mismo",  # es
        r"urgent|immédiatement|au plus vite|dès que possible|tout de suite",  # fr
        r"urgente|imediatamente|o mais rápido possível|o quanto antes|agora mesmo",  # pt
        r"紧急|急用|着急|马上|立刻|立即|尽快|赶紧",  # zh
        r"至急|緊急|急いで|急ぎ|すぐに|早急|今すぐ",  # ja
    ],
}

# Matched against lower-cased text: three times faster than re.IGNORECASE on these alternations.
_COMPILED_SIGNALS = {name: re.compile("|".join(parts)) for name, parts in _SIGNAL_PATTERNS.items()}
_COMPILED_EMOTIONS = {name: re.compile("|".join(parts)) for name, parts in _EMOTION_PATTERNS.items()}


@dataclass(frozen=True)
class Signals:
    signals: tuple[str, ...]  # urgency signals found, e.g. ("security", "legal_threat")
    emotions: tuple[str, ...]  # "anger", "frustration", "urgency"
    severity: str  # low | medium | high | critical


def _shouting(text: str) -> bool:
    letters = [c for c in text if c.isalpha()]
    return (len(letters) >= 12 and sum(c.isupper() for c in letters) / len(letters) > 0.7) or "!!!" in text


def detect(text: str, category: str | None = None, sentiment: str | None = None) -> Signals:
    normalised = text.replace("\u2019", "'").lower()
    found = [name for name, pattern in _COMPILED_SIGNALS.items() if pattern.search(normalised)]
    if category:
        for part in category.split("/"):
            signal = _CATEGORY_SIGNALS.get(part)
            if signal and signal not in found:
                found.append(signal)
    emotions = [name for name, pattern in _COMPILED_EMOTIONS.items() if pattern.search(normalised)]
    if _shouting(text) and "anger" not in emotions:
        emotions.append("anger")
    if _CRITICAL & set(found):
        severity = "critical"
    elif "payment_failure" in found or ("anger" in emotions and "urgency" in emotions):
        severity = "high"
    elif sentiment == "negative" or emotions:
        severity = "medium"
    else:
        severity = "low"
    order = list(_SIGNAL_PATTERNS)
    return Signals(signals=tuple(sorted(found, key=order.index)),
                   emotions=tuple(e for e in _EMOTION_PATTERNS if e in emotions), severity=severity)
