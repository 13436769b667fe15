import Foundation

/// What Apple's schemas allow on watchOS (`supportedOS.watchOS` of mdm/profiles/*.yaml and
/// declarative/declarations/**/*.yaml): the payload and declaration types, whether each needs supervision, and the keys
/// not available on watchOS or needing supervision there. Generated from the schemas; AppleProtocolTests reads them and
/// checks this table against them (a schema update that changes a rule fails that test until the table follows).
public enum WatchOSRules {
    /// Profile payload types available on watchOS → whether the payload needs a supervised watch.
    public static let payloads: [String: Bool] = [
        "com.apple.applicationaccess": false,
        "com.apple.cellular": false,
        "com.apple.declarations": false,
        "com.apple.mdm": true,
        "com.apple.mobiledevice.passwordpolicy": false,
        "com.apple.security.acme": false,
        "com.apple.security.certificatetransparency": false,
        "com.apple.security.pem": false,
        "com.apple.security.pkcs1": false,
        "com.apple.security.pkcs12": false,
        "com.apple.security.root": false,
        "com.apple.security.scep": false,
        "com.apple.vpn.managed.applayer": true,
        "com.apple.wifi.managed": false,
    ]

    /// Keys of those payloads that watchOS does not have.
    public static let unavailableKeys: [String: Set<String>] = [
        "com.apple.applicationaccess": [
            "allowActivityContinuation", "allowAddingGameCenterFriends", "allowAirDrop",
            "allowAirPlayIncomingRequests", "allowAirPrint", "allowAirPrintCredentialsStorage",
            "allowAirPrintiBeaconDiscovery", "allowAppCellularDataModification", "allowAppClips",
            "allowApplePersonalizedAdvertising", "allowAppsToBeHidden", "allowAppsToBeLocked",
            "allowARDRemoteManagementModification", "allowAssistant", "allowAutoCorrection", "allowAutoDim",
            "allowAutomaticScreenSaver", "allowAutoUnlock", "allowBluetoothModification",
            "allowBluetoothSharingModification", "allowBookstore", "allowBookstoreErotica", "allowCallRecording",
            "allowCamera", "allowCellularPlanModification", "allowChat", "allowCloudAddressBook", "allowCloudBackup",
            "allowCloudBookmarks", "allowCloudCalendar", "allowCloudDesktopAndDocuments", "allowCloudDocumentSync",
            "allowCloudFreeform", "allowCloudKeychainSync", "allowCloudMail", "allowCloudNotes",
            "allowCloudPhotoLibrary", "allowCloudPrivateRelay", "allowCloudReminders", "allowContentCaching",
            "allowContinuousPathKeyboard", "allowDefinitionLookup", "allowDeviceNameModification",
            "allowDeviceSleep", "allowDiagnosticSubmissionModification", "allowDictation",
            "allowEnablingRestrictions", "allowEnterpriseAppTrust", "allowEnterpriseBookBackup",
            "allowEnterpriseBookMetadataSync", "allowEraseContentAndSettings", "allowESIMModification",
            "allowESIMOutgoingTransfers", "allowExplicitContent", "allowFileSharingModification",
            "allowFilesNetworkDriveAccess", "allowFilesUSBDriveAccess", "allowFindMyDevice", "allowFindMyFriends",
            "allowFindMyFriendsModification", "allowFingerprintForUnlock", "allowFingerprintModification",
            "allowGameCenter", "allowGenmoji", "allowGlobalBackgroundFetchWhenRoaming", "allowHostPairing",
            "allowImagePlayground", "allowImageWand", "allowInAppPurchases", "allowInternetSharingModification",
            "allowiPhoneMirroring", "allowiPhoneWidgetsOnMac", "allowiTunes", "allowiTunesFileSharing",
            "allowKeyboardShortcuts", "allowListedAppBundleIDs", "allowLiveVoicemail", "allowLocalUserCreation",
            "allowLockScreenControlCenter", "allowLockScreenTodayView", "allowMailPrivacyProtection",
            "allowMailSummary", "allowManagedAppsCloudSync", "allowManagedToWriteUnmanagedContacts",
            "allowMarketplaceAppInstallation", "allowMediaSharingModification", "allowMultiplayerGaming",
            "allowMusicService", "allowNews", "allowNFC", "allowNotificationsModification",
            "allowOpenFromManagedToUnmanaged", "allowOpenFromUnmanagedToManaged", "allowOTAPKIUpdates",
            "allowPairedWatch", "allowPassbookWhileLocked", "allowPasscodeModification", "allowPasswordAutoFill",
            "allowPasswordProximityRequests", "allowPasswordSharing", "allowPersonalHotspotModification",
            "allowPersonalizedHandwritingResults", "allowPhotoStream", "allowPodcasts", "allowPredictiveKeyboard",
            "allowPrinterSharingModification", "allowProximitySetupToNewDevice", "allowRadioService",
            "allowRapidSecurityResponseInstallation", "allowRapidSecurityResponseRemoval", "allowRCSMessaging",
            "allowRemoteAppleEventsModification", "allowRemoteAppPairing", "allowRemoteScreenObservation",
            "allowSafari", "allowSharedDeviceTemporarySession", "allowSharedStream", "allowSpellCheck",
            "allowSpotlightInternetResults", "allowStartupDiskModification", "allowSystemAppRemoval",
            "allowTimeMachineBackup", "allowUIConfigurationProfileInstallation", "allowUniversalControl",
            "allowUnmanagedToReadManagedContacts", "allowUnpairedExternalBootToRecovery", "allowUntrustedTLSPrompt",
            "allowUSBRestrictedMode", "allowVideoConferencing", "allowVoiceDialing", "allowVPNCreation",
            "allowWallpaperModification", "allowWebDistributionAppInstallation", "allowWritingTools",
            "autonomousSingleAppModePermittedAppIDs", "blacklistedAppBundleIDs", "blockedAppBundleIDs",
            "enforcedFingerprintTimeout", "enforcedSoftwareUpdateDelay",
            "enforcedSoftwareUpdateMajorOSDeferredInstallDelay", "enforcedSoftwareUpdateMinorOSDeferredInstallDelay",
            "enforcedSoftwareUpdateNonOSDeferredInstallDelay", "forceAirDropUnmanaged",
            "forceAirPlayIncomingRequestsPairingPassword", "forceAirPlayOutgoingRequestsPairingPassword",
            "forceAirPrintTrustedTLSRequirement", "forceAssistantProfanityFilter",
            "forceAuthenticationBeforeAutoFill", "forceAutomaticDateAndTime", "forceBypassScreenCaptureAlert",
            "forceClassroomAutomaticallyJoinClasses", "forceClassroomRequestPermissionToLeaveClasses",
            "forceClassroomUnpromptedAppAndDeviceLock", "forceClassroomUnpromptedScreenObservation",
            "forceDelayedAppSoftwareUpdates", "forceDelayedMajorSoftwareUpdates", "forceDelayedSoftwareUpdates",
            "forceEncryptedBackup", "forceITunesStorePasswordEntry", "forceLimitAdTracking",
            "forcePreserveESIMOnErase", "forceWiFiPowerOn", "forceWiFiToAllowedNetworksOnly",
            "forceWiFiWhitelisting", "ratingApps", "ratingMovies", "ratingRegion", "ratingTVShows",
            "requireManagedPasteboard", "safariAcceptCookies", "safariAllowAutoFill", "safariAllowJavaScript",
            "safariAllowPopups", "safariForceFraudWarning", "whitelistedAppBundleIDs",
        ],
        "com.apple.mdm": [
            "ManagedAppleID", "AssignedManagedAppleID", "EnrollmentMode", "RequiredAppIDForMDM",
            "PromptUserToAllowBootstrapTokenForAuthentication",
        ],
        "com.apple.mobiledevice.passwordpolicy": [
            "minComplexChars", "requireAlphanumeric", "minutesUntilFailedLoginReset", "changeAtNextAuth",
            "customRegex",
        ],
        "com.apple.security.acme": [
            "KeyIsExtractable", "AllowAllAppsAccess",
        ],
        "com.apple.security.pkcs12": [
            "AllowAllAppsAccess", "KeyIsExtractable",
        ],
        "com.apple.vpn.managed.applayer": [
            "SafariDomains", "MailDomains", "CalendarDomains", "ContactsDomains", "SMBDomains",
        ],
        "com.apple.wifi.managed": [
            "SetupModes",
        ],
    ]

    /// Keys of those payloads that need a supervised watch.
    public static let supervisedKeys: [String: Set<String>] = [
        "com.apple.applicationaccess": [
            "allowAccountModification", "allowAppInstallation", "allowAppRemoval",
            "allowAssistantUserGeneratedContent", "allowAutomaticAppDownloads", "allowUIAppInstallation",
        ],
    ]

    /// Declaration types available on watchOS → whether the declaration needs a supervised watch (its
    /// `supportedOS.watchOS.allowed-enrollments` names neither `device` nor `user`).
    public static let declarations: [String: Bool] = [
        "com.apple.activation.simple": false,
        "com.apple.asset.credential.acme": false,
        "com.apple.asset.credential.certificate": false,
        "com.apple.asset.credential.identity": false,
        "com.apple.asset.credential.scep": false,
        "com.apple.asset.credential.userpassword": false,
        "com.apple.asset.data": false,
        "com.apple.asset.useridentity": false,
        "com.apple.configuration.legacy": true,
        "com.apple.configuration.management.status-subscriptions": true,
        "com.apple.configuration.management.test": true,
        "com.apple.configuration.passcode.settings": true,
        "com.apple.configuration.security.certificate": true,
        "com.apple.configuration.security.identity": true,
        "com.apple.management.organization-info": false,
        "com.apple.management.properties": false,
        "com.apple.management.server-capabilities": false,
    ]

    /// Payload keys of those declarations that watchOS does not have.
    public static let declarationUnavailableKeys: [String: Set<String>] = [
        "com.apple.configuration.passcode.settings": [
            "ChangeAtNextAuth", "CustomRegex", "FailedAttemptsResetInMinutes", "MinimumComplexCharacters", "RequireAlphanumericPasscode",
        ],
        "com.apple.configuration.security.identity": [
            "AllowAllAppsAccess", "KeyIsExtractable",
        ],
    ]

    /// Why `profile` (a configuration profile's plist) cannot be installed on a watch (`supervised` or not), each
    /// problem naming the rule; empty when it can.
    public static func problems(profile: [String: PlistValue], supervised: Bool) -> [String] {
        guard profile["PayloadType"]?.string == "Configuration" else { return ["not a configuration profile (PayloadType Configuration)"] }
        var found: [String] = []
        for payload in profile["PayloadContent"]?.array?.compactMap(\.dictionary) ?? [] {
            let type = payload["PayloadType"]?.string ?? "(no PayloadType)"
            guard let needsSupervision = payloads[type] else {
                found.append("\(type) is not available on watchOS (Apple's schema: supportedOS.watchOS n/a)")
                continue
            }
            if needsSupervision && !supervised { found.append("\(type) needs a supervised watch (Apple's schema: supervised)") }
            for key in payload.keys.sorted() {
                if unavailableKeys[type]?.contains(key) == true { found.append("\(type).\(key) is not available on watchOS") }
                if !supervised, supervisedKeys[type]?.contains(key) == true { found.append("\(type).\(key) needs a supervised watch") }
            }
        }
        return found
    }

    /// Why a declaration of `type` cannot go to a watch; nil when it can.
    public static func declarationProblem(type: String, supervised: Bool) -> String? {
        guard let needsSupervision = declarations[type] else { return "\(type) is not available on watchOS (Apple's schema: supportedOS.watchOS n/a)" }
        return needsSupervision && !supervised ? "\(type) needs a supervised watch (Apple's schema: allowed-enrollments supervised)" : nil
    }

    /// Why a declaration of `type` with these payload keys cannot go to a watch: the type's rule, then each key watchOS
    /// does not have; empty when it can.
    public static func declarationProblems(type: String, payloadKeys: some Sequence<String>, supervised: Bool) -> [String] {
        if let problem = declarationProblem(type: type, supervised: supervised) { return [problem] }
        return payloadKeys.sorted().compactMap { key in
            declarationUnavailableKeys[type]?.contains(key) == true ? "\(type).\(key) is not available on watchOS (Apple's schema)" : nil
        }
    }
}
